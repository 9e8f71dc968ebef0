"""``labkit run``: execute the notebooks in order with papermill, with progress, stopping at the first failure."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit import teardown
from labkit.config import RUN_DIR, LabConfig, confirm_before, default_region, target_class
from labkit.errors import LabkitError
from labkit.session import Lab

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NUMBER = re.compile(r"^(\d+)_")
# Per cell: on AWS an RDS instance takes 10-20 minutes to create, and teardown waits for its deletion and
# for Lambda to release its network interfaces (up to ~20 minutes more).


class RunFailed(LabkitError):
    """A notebook failed: which one, which cell, and the error it raised."""


@dataclass
class NotebookResult:
    notebook: str
    status: str
    seconds: float
    error: str = ""


@dataclass
class RunSummary:
    output_dir: str
    target: str
    results: list[NotebookResult] = field(default_factory=list)
    left: str = ""  # after a stop on aws: what of the lab still exists

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    def table(self) -> str:
        lines = [f"{'notebook':<34} {'status':<8} {'seconds':>8}"]
        lines += [f"{r.notebook:<34} {r.status:<8} {r.seconds:>8.1f}" for r in self.results]
        lines.append(f"{'total':<34} {'':<8} {self.total_seconds:>8.1f}")
        return "\n".join(lines)


def _kernel_manager_class() -> type:
    """Kernels whose sockets are encrypted (CurveZMQ, as the kernelspec offers): no per-notebook warning that
    the kernel "is running over TCP without encryption", and nothing readable on the loopback by others."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets import default

    class EncryptedKernelManager(KernelManager):
        @default("transport_encryption")
        def _default_transport_encryption(self) -> str:
            return "auto" if zmq.has("curve") else "disabled"

    return EncryptedKernelManager


# What every notebook's first cell imports, imported by each kernel as it starts; an expression that binds no name
AHEAD = "[__import__(m) for m in ('labkit.session', 'labkit.checks', 'labkit.display')] and None"


class _Kernels:
    """A fresh kernel for every notebook, each started while the notebook before it runs.

    A kernel takes seconds to start and import what every notebook's first cell imports (IPython, then labkit
    with boto3 and pandas: 2-3 s each on a 2-core machine); started one notebook ahead, that time overlaps the
    previous notebook's waits on the cloud instead of adding to the run. Each notebook still gets a kernel of its
    own, as when a student opens it; the modules are imported ahead (``sys.modules``), no name is defined in
    the notebook's namespace, so a notebook that forgets an import still fails here as it would for a student.
    """

    def __init__(self, kernel: str, cwd: Path) -> None:
        self.kernel, self.cwd = kernel, cwd
        self._next: Any = None

    def _start(self) -> Any:
        km = _kernel_manager_class()(kernel_name=self.kernel)
        # as papermill's client starts one: in the notebooks' folder, no IPython history file
        km.start_kernel(cwd=str(self.cwd), extra_arguments=["--HistoryManager.hist_file=:memory:",
                                                            f"--IPKernelApp.exec_lines={AHEAD}"])
        return km

    def take(self, another_follows: bool) -> Any:
        """This notebook's kernel (started ahead, or now), and the next one's started in the background."""
        km, self._next = self._next or self._start(), None
        if another_follows:
            self._next = self._start()
        return km

    @staticmethod
    def stop(km: Any) -> None:
        with contextlib.suppress(Exception):  # a kernel that died already
            km.shutdown_kernel(now=False)

    def close(self) -> None:
        if self._next is not None:
            self.stop(self._next)
            self._next = None


def select_notebooks(start: int | None = None, end: int | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks from ``start`` to ``end`` (inclusive), in order."""
    chosen = []
    for path in sorted(folder.glob("*.ipynb")):
        match = NUMBER.match(path.name)
        if not match:
            continue
        number = int(match.group(1))
        if (start is None or number >= start) and (end is None or number <= end):
            chosen.append(path)
    return chosen


def declared_parameters(path: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns (papermill warns about any other it is given)."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        if "parameters" in cell.metadata.get("tags", []):
            return set(re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, re.M))
    return set()


def _failure_detail(exc: BaseException) -> tuple[str, str]:
    cell = getattr(exc, "exec_count", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    return (f"cell {cell}" if cell is not None else "a cell"), f"{ename}: {evalue}"


def run_notebooks(target: str = "local", start: int | None = None, end: int | None = None,
                  output_dir: Path | None = None, lab_name: str = "orders-lab", region: str | None = None,
                  kernel: str = "python3", cell_timeout: int | None = None, show_progress: bool = True,
                  folder: Path = NOTEBOOKS, confirm: bool = False, solutions: bool = True) -> RunSummary:
    """Run the selected notebooks with papermill; write them and ``summary.json`` to ``output_dir``.

    ``confirm`` is passed to every notebook as its ``confirm`` parameter (the aws target needs it). On the
    aws target a run that stops lists what of the lab still exists, and how to delete it. ``solutions`` goes
    to the notebooks that have a "Your turn" task: their reference solutions run, and their checks must pass.
    """
    import papermill
    from tqdm.auto import tqdm

    notebooks = select_notebooks(start, end, folder)
    if not notebooks:
        raise LabkitError(f"no notebooks numbered {start}..{end} in {folder}")
    region = region or default_region(target)
    kind = target_class(target)
    cell_timeout = cell_timeout or kind.cell_timeout
    confirm_before(LabConfig(target=target, name=lab_name, region=region), "Running the notebooks", confirm)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(output_dir or Path.cwd() / "runs" / stamp)
    out.mkdir(parents=True, exist_ok=True)
    if output_dir is None:
        link_latest(out, folder)
    summary = RunSummary(str(out), target)
    parameters: dict[str, Any] = {"target": target, "lab_name": lab_name, "region": region, "confirm": confirm}
    bar = tqdm(notebooks, unit="notebook", disable=not show_progress)
    kernels = _Kernels(kernel, folder)
    with _run_dir_for_kernels(out), contextlib.closing(kernels):
        for number, path in enumerate(bar, 1):
            bar.set_description(path.stem)
            started = time.monotonic()
            given = {**parameters, "solutions": solutions} if "solutions" in declared_parameters(path) else parameters
            km = kernels.take(another_follows=number < len(notebooks))
            try:
                papermill.execute_notebook(str(path), str(out / path.name), parameters=given, kernel_name=kernel,
                                           execution_timeout=cell_timeout, progress_bar=False, cwd=str(path.parent),
                                           log_output=False, km=km)
            except (Exception, KeyboardInterrupt) as exc:  # PapermillExecutionError, a dead kernel, Ctrl-C
                where, what = _failure_detail(exc)
                summary.results.append(NotebookResult(path.stem, "failed", time.monotonic() - started, f"{where}: {what}"))
                summary.left = leftovers(target, lab_name, region) if kind.bills else ""
                _write(summary, out)
                bar.close()
                options = f"--target {target} --lab {lab_name} --region {region}"
                raise RunFailed(f"{path.name} failed at {where}: {what}" + (f"\n{summary.left}" if summary.left else ""),
                                f"open {out / path.name} to see the cell and its traceback; fix it and re-run with "
                                f"`labkit run {options} --from {path.name.split('_', 1)[0]}`"
                                + (f", or delete everything with `labkit down {options} --yes`"
                                   if kind.bills else "")) from exc
            finally:
                kernels.stop(km)
            trust(out / path.name)
            summary.results.append(NotebookResult(path.stem, "ok", time.monotonic() - started))
            _write(summary, out)
    return summary


@contextlib.contextmanager
def _run_dir_for_kernels(out: Path) -> Iterator[None]:
    """Kernels started meanwhile know where the executed notebooks go (a report cell writes beside them)."""
    previous = os.environ.get(RUN_DIR)
    os.environ[RUN_DIR] = str(out.resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR, None)
        else:
            os.environ[RUN_DIR] = previous


def link_latest(out: Path, folder: Path = NOTEBOOKS) -> Path:
    """``<folder>/runs/latest``: a link to the run's executed notebooks, so ``make jupyter`` (rooted at the
    notebooks) opens them beside the empty ones. Relative when it can be, replaced on every run."""
    link = folder / "runs" / "latest"
    link.parent.mkdir(exist_ok=True)
    try:
        target = Path(os.path.relpath(out.resolve(), link.parent.resolve()))
    except ValueError:  # another drive
        target = out.resolve()
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)
    return link


def trust(notebook: Path) -> None:
    """Sign a notebook this run executed (as ``jupyter trust`` does): JupyterLab then shows its outputs as they
    were made, tables with their style, instead of sanitizing them as it does for notebooks from elsewhere."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(notebook, as_version=4)
    NotebookNotary().sign(nb)


def leftovers(target: str, lab_name: str, region: str) -> str:
    """What of the lab still exists (and bills), as text for a stopped run; never raises."""
    try:
        frame = teardown.remaining_frame(Lab(target=target, name=lab_name, region=region))
    except Exception as exc:  # no credentials, no network: say so rather than stay silent
        return (f"Could not list what of lab {lab_name!r} still exists ({type(exc).__name__}: {exc}); check with "
                f"`labkit status --target {target} --lab {lab_name} --region {region}`.")
    if frame.empty:
        return f"Nothing of lab {lab_name!r} exists in {region}."
    listing: str = frame.to_string(index=False)
    return f"These resources of lab {lab_name!r} still exist in {region} and cost money until deleted:\n{listing}"


def _write(summary: RunSummary, out: Path) -> None:
    data = asdict(summary)
    data["total_seconds"] = summary.total_seconds
    (out / "summary.json").write_text(json.dumps(data, indent=2))

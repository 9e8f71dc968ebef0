"""The notebook runner: selection by number, the summary, and a failure that names notebook and cell."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat
import pytest

from labkit.runner import RunFailed, run_notebooks, select_notebooks


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('target = "local"\nlab_name = "x"\nregion = "us-east-1"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *[nbformat.v4.new_code_cell(s) for s in sources]]
    nbformat.write(nb, path)


def test_select_by_number(tmp_path):
    for name in ("00_a", "03_b", "14_c", "99_d", "notes"):
        _notebook(tmp_path / f"{name}.ipynb", "1")
    chosen = select_notebooks(3, 14, folder=tmp_path)
    assert [p.stem for p in chosen] == ["03_b", "14_c"]


def test_run_writes_summary_and_stops_at_the_failing_cell(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_ok.ipynb", "x = 1")
    _notebook(folder / "02_broken.ipynb", "y = 2", "raise ValueError('step failed on purpose')")
    _notebook(folder / "03_never.ipynb", "z = 3")
    out = tmp_path / "out"
    with pytest.raises(RunFailed) as caught:
        run_notebooks(output_dir=out, show_progress=False, cell_timeout=60, folder=folder)
    message = str(caught.value)
    assert "02_broken.ipynb" in message and "ValueError: step failed on purpose" in message and "cell" in message
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["notebook"], r["status"]) for r in summary["results"]] == [("01_ok", "ok"), ("02_broken", "failed")]
    assert (out / "01_ok.ipynb").exists() and not (out / "03_never.ipynb").exists()


def test_each_notebook_has_a_kernel_of_its_own_with_nothing_defined_ahead(tmp_path):
    """Kernels start one notebook ahead and import labkit as they start; a notebook still sees only its own names."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_defines.ipynb", "import os\nx = 1\npid = os.getpid()\nopen('pids', 'a').write(f'{pid}\\n')")
    _notebook(folder / "02_sees_nothing.ipynb",
              "import os, sys\nopen('pids', 'a').write(f'{os.getpid()}\\n')\n"
              "assert 'x' not in dir() and 'labkit' not in dir(), 'a name defined ahead'\n"
              "assert 'labkit.session' in sys.modules, 'labkit imported as the kernel started'")
    _notebook(folder / "03_forgot_its_import.ipynb", "labkit.Lab")
    with pytest.raises(RunFailed) as caught:
        run_notebooks(output_dir=tmp_path / "out", show_progress=False, cell_timeout=60, folder=folder)
    assert "03_forgot_its_import.ipynb" in str(caught.value) and "NameError" in str(caught.value)
    pids = (folder / "pids").read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1], "two notebooks shared a kernel"


def test_function_packages_never_carry_pymysql():
    import io
    import zipfile

    from labkit.functions import package_function

    for folder in ("order_validator", "daily_report"):
        bundle = b"-----BEGIN CERTIFICATE-----\n"
        names = zipfile.ZipFile(io.BytesIO(package_function(folder, bundle))).namelist()
        assert "lambda_function.py" in names and "orders_db.py" in names and "rds-ca-bundle.pem" in names
        assert not any(n.startswith(("pymysql", "python/")) for n in names)
        assert package_function(folder, bundle) == package_function(folder, bundle)  # same CodeSha256


def test_solutions_go_only_to_notebooks_that_declare_them(tmp_path):
    from labkit.runner import declared_parameters

    _notebook(tmp_path / "01_a.ipynb", "1")
    assert declared_parameters(tmp_path / "01_a.ipynb") == {"target", "lab_name", "region"}
    nb = nbformat.read(tmp_path / "01_a.ipynb", as_version=4)
    nb.cells[0].source += "\nsolutions = False  # the reference solutions"
    nbformat.write(nb, tmp_path / "02_b.ipynb")
    assert "solutions" in declared_parameters(tmp_path / "02_b.ipynb")


def test_a_default_run_is_linked_as_notebooks_runs_latest_and_trusted(tmp_path, monkeypatch):
    """`make jupyter` opens the notebooks folder: runs/latest there leads to the last run's executed notebooks,
    signed so that JupyterLab shows their outputs with their style. In the tests, the signature store (and every
    other file Jupyter, IPython or matplotlib keep) is the session's own (tests/conftest.py), never the user's:
    with HOME an empty folder, the run leaves it empty."""
    from nbformat.sign import NotebookNotary

    from tests.helpers import USER_DIRS

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "01_ok.ipynb", "import matplotlib.pyplot\nx = 1")
    summary = run_notebooks(show_progress=False, cell_timeout=60, folder=folder)
    assert not list(home.iterdir())
    assert all(os.environ[name].startswith(tempfile.gettempdir()) for name in USER_DIRS)
    assert (Path(os.environ["JUPYTER_DATA_DIR"]) / "nbsignatures.db").exists()
    latest = folder / "runs" / "latest"
    assert latest.is_symlink() and not latest.readlink().is_absolute()
    assert latest.resolve() == (tmp_path / summary.output_dir).resolve()
    executed = nbformat.read(latest / "01_ok.ipynb", as_version=4)
    assert NotebookNotary().check_signature(executed)
    assert not NotebookNotary().check_signature(nbformat.read(folder / "01_ok.ipynb", as_version=4))


def test_a_report_goes_beside_the_executed_notebooks_and_links_from_there(tmp_path, monkeypatch):
    """In a run (a classroom's shared notebooks are read-only to students) the report is written to the run's
    folder, which the runner gives its kernels, and the notebook links it relative to its executed copy."""
    from labkit import report, runner
    from labkit.config import RUN_DIR

    out = tmp_path / "run"
    monkeypatch.delenv(RUN_DIR, raising=False)
    with runner._run_dir_for_kernels(out):
        assert report.report_folder() == out.resolve()
        assert report.report_link(out.resolve() / "report-x.html") == "report-x.html"
    assert RUN_DIR not in __import__("os").environ
    monkeypatch.chdir(tmp_path)
    assert report.report_folder() == tmp_path / "runs"

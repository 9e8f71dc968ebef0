"""The class service's hands in a student's account: labkit run as that student, never as root.

The service runs as root (as the Hub does, to act as each student). It never reads a student's files or talks
to a student's cloud itself: every look at a lab (``labkit.probe``) and every change (``labkit cloud reset``,
``labkit cloud restore NAME``, the notebook update) is a child process that has dropped to the student's uid and
gid (no supplementary groups), with a clean environment (the lab's settings as the Hub gave them to the
student's server, saved at spawn by ``hub_hooks.save_lab_settings``), Python's isolated mode (``-I``: no user
site-packages, no ``PYTHON*`` variables) and the shared install first on ``sys.path``. The probe makes itself
non-dumpable at once, so the student's other processes cannot attach to it.
"""
from __future__ import annotations

import asyncio
import json
import pwd
from pathlib import Path
from typing import Any

# Run a module of the shared install: its folder first on sys.path (``-I`` ignores PYTHONPATH).
BOOT = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
        "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)")
LAB_KEYS = ("LABKIT_", "ORDERS_LAB_")


def settings_path(state: Path, student: str) -> Path:
    return state / "labs" / f"{student}.json"


def save_settings(state: Path, student: str, env: dict[str, str]) -> None:
    """The lab's settings of a student's server (``LABKIT_*``), for the service's processes as that student."""
    folder = state / "labs"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    kept = {k: str(v) for k, v in env.items() if k.startswith(LAB_KEYS)}
    tmp = settings_path(state, student).with_suffix(".tmp")
    tmp.write_text(json.dumps(kept))
    tmp.replace(settings_path(state, student))


class Hands:
    def __init__(self, state: Path, root: Path, python: Path, workers: int = 2) -> None:
        self.state, self.root, self.python = state, root, python
        self.slots = asyncio.Semaphore(workers)

    def environment(self, account: pwd.struct_passwd) -> dict[str, str]:
        try:
            saved = json.loads(settings_path(self.state, account.pw_name).read_text())
        except (OSError, ValueError):
            saved = {}
        return {"LABKIT_HOME": str(Path(account.pw_dir) / ".labkit"), **saved, "HOME": account.pw_dir,
                "USER": account.pw_name, "LOGNAME": account.pw_name, "LANG": "C.UTF-8",
                "PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin"}

    async def run(self, student: str, module: str, args: list[str], timeout: float = 120,
                  extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run ``python -m module args`` as ``student``; (exit code, stdout, stderr). Raises KeyError for an
        unknown account and asyncio.TimeoutError (after killing it) for a process that takes too long."""
        account = pwd.getpwnam(student)
        env = {**self.environment(account), **(extra_env or {})}
        async with self.slots:
            proc = await asyncio.create_subprocess_exec(
                str(self.python), "-I", "-c", BOOT, str(self.root), module, *args, env=env, cwd=account.pw_dir,
                user=account.pw_uid, group=account.pw_gid, extra_groups=[], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def probe(self, student: str, steps: bool = True, tasks: list[int] | None = None) -> dict[str, Any]:
        """The student's lab as ``labkit.probe`` finds it (an ``error`` key when it could not be asked)."""
        args = (["--steps"] if steps else []) + [a for step in tasks or [] for a in ("--task", str(step))]
        try:
            code, out, err = await self.run(student, "labkit.probe", args, timeout=90,
                                            extra_env={"LABKIT_RECORDS": "off"})
        except (KeyError, OSError, asyncio.TimeoutError) as exc:
            return {"error": f"could not ask the lab: {type(exc).__name__}: {exc}"}
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"the probe answered no JSON (exit {code}): {(err or out)[-300:]}"}

    async def labkit(self, student: str, *args: str, timeout: float = 180) -> tuple[int, str]:
        """``labkit ARGS`` as the student; (exit code, its output)."""
        code, out, err = await self.run(student, "labkit.cli", list(args), timeout=timeout)
        return code, (out + err).strip()

    async def reset(self, student: str, checkpoint: str | None = None) -> tuple[bool, str]:
        """The student's lab emptied (``labkit cloud reset``) or brought to a checkpoint (``labkit cloud restore
        NAME``, the persistence issue's verb). A lab that is down is started for it and stopped again after.
        The student's notebooks are not touched: only the lab's state in ``~/.labkit`` changes."""
        code, _ = await self.labkit(student, "cloud", "status")
        was_down = code != 0
        log = []
        if was_down:
            code, out = await self.labkit(student, "cloud", "start")
            log.append(out)
            if code:
                return False, "\n".join(log)
        verb = ["cloud", "restore", checkpoint] if checkpoint else ["cloud", "reset"]
        code, out = await self.labkit(student, *verb, timeout=600)  # a restore imports databases and disks
        log.append(out)
        if was_down:
            log.append((await self.labkit(student, "cloud", "stop"))[1])
        return code == 0, "\n".join(x for x in log if x)

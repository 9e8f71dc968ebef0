"""What the classroom Hub does around each student's server: their environment, notebooks and lab.

Used by ``jupyterhub_config.py``; the Hub runs as root and each server as the student's own account.
"""
from __future__ import annotations

import asyncio
import json
import os
import pwd
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

DEFAULT_URL = "/lab/tree/notebooks/00_start_here.ipynb"


def _account(spawner: Any) -> pwd.struct_passwd:
    return pwd.getpwnam(spawner.user.name)


def lab_home(spawner: Any) -> str:
    """The student's lab state folder: under their home, readable by them only."""
    return str(Path(_account(spawner).pw_dir) / ".labkit")


def lab_environment(root: Path, python: Path, lambda_python: Path) -> dict[str, Any]:
    """The server's environment: the shared install on PATH, the student's own lab state, the proxy rules."""
    return {
        "LABKIT_HOME": lab_home,
        "PATH": f"{python.parent}:{root / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": str(root),
        # The lab's Jupyter settings, and the install's own (server extensions such as jupyter-server-proxy)
        # for an interpreter whose prefix is not the install's .venv.
        "JUPYTER_CONFIG_PATH": f"{root / 'jupyter'}:{root / '.venv' / 'etc' / 'jupyter'}",
        "LABKIT_LAMBDA_PYTHON": str(lambda_python),
        "LABKIT_WHEELHOUSE": str(root / ".cache" / "wheels"),
    }


def prepare_server(root: Path, python: Path, state: Path, course: str) -> Callable[[Any], Awaitable[None]]:
    """A pre-spawn hook: a private home, the lab's settings kept for the class service, and the student's
    notebooks pulled from the course (``labkit.course``, as the student: their edits stay). After an update the
    server opens ``WHAT-CHANGED.md`` first."""
    from class_probe import Hands, save_settings

    hands = Hands(state, root, python, workers=4)

    async def hook(spawner: Any) -> None:
        account = _account(spawner)
        home = Path(account.pw_dir)
        home.chmod(0o700)  # nothing of one student's (lab state, keys, notebooks) is readable by another
        save_settings(state, account.pw_name, spawner.get_env())
        folder = home / "orders-lab" / "notebooks"
        if not folder.parent.exists():
            folder.parent.mkdir(mode=0o755)
            os.chown(folder.parent, account.pw_uid, account.pw_gid)
        code, out, err = await hands.run(account.pw_name, "labkit.course", ["pull", course, str(folder)], timeout=120)
        try:
            summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            summary = {"error": err[-500:]}
        if code or "error" in summary:
            spawner.log.warning("the notebooks of %s were not updated: %s", account.pw_name, summary.get("error"))
            return
        changed = any(summary.get(k) for k in ("replaced", "kept_edits", "added", "removed", "moved_aside"))
        spawner.default_url = "/lab/tree/WHAT-CHANGED.md" if changed else DEFAULT_URL

    return hook


def stop_lab(root: Path, python: Path) -> Callable[[Any], Awaitable[None]]:
    """A post-stop hook: a stopped (or culled) server stops its lab's local cloud, as the student."""

    async def hook(spawner: Any) -> None:
        account = _account(spawner)
        env = {"LABKIT_HOME": lab_home(spawner), "HOME": account.pw_dir, "PATH": "/usr/bin:/bin",
               "PYTHONPATH": str(root)}
        proc = await asyncio.create_subprocess_exec(
            str(python), "-m", "labkit.cli", "cloud", "stop", env=env, cwd=account.pw_dir, user=account.pw_uid,
            group=account.pw_gid, extra_groups=[], stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        except asyncio.TimeoutError:
            proc.kill()
            raise
        if proc.returncode:
            spawner.log.warning("stopping the lab of %s failed: %s", account.pw_name, err.decode(errors="replace"))

    return hook

"""What the classroom Hub does around each student's server: their environment, notebooks and lab.

Used by ``jupyterhub_config.py``; the Hub runs as root and each server as the student's own account.
"""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
from pathlib import Path
from typing import Any, Awaitable, Callable


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


def copy_notebooks(root: Path) -> Callable[[Any], None]:
    """A pre-spawn hook: a private home, and the student's own copy of the notebooks on first start."""

    def hook(spawner: Any) -> None:
        account = _account(spawner)
        home = Path(account.pw_dir)
        home.chmod(0o700)  # nothing of one student's (lab state, keys, notebooks) is readable by another
        target = home / "orders-lab" / "notebooks"
        if target.exists():
            return
        shutil.copytree(root / "notebooks", target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        for folder in (target.parent, target, *target.rglob("*")):
            os.chown(folder, account.pw_uid, account.pw_gid)

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

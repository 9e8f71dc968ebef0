"""The Hub's course copy: a git repository of the notebooks that every student's copy is pulled from.

A bare repository readable by every account (default ``/srv/orders-course.git``, ``ORDERS_HUB_COURSE``). The
Hub publishes the install's ``notebooks/`` into it when it starts (a fixed notebook in a new checkout reaches
the course at the next Hub start), and ``classctl publish -m "what changed"`` does it at any time; each
publication is one commit, whose message students read in ``WHAT-CHANGED.md``. Students' copies are
nbgitpuller clones of it (``labkit.course``), updated when their server starts or when the instructor sends
the update from the class page.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BRANCH = "main"
SKIP = shutil.ignore_patterns(".ipynb_checkpoints", "runs", "__pycache__", "*.pyc")
AUTHOR = ["-c", "user.name=Orders Lab course", "-c", "user.email=course@orders-lab.invalid"]


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, "LANG": "C", "GIT_TERMINAL_PROMPT": "0"}).stdout


def _readable(path: Path) -> None:
    """Every account reads the course (directories 0755, files 0644)."""
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def publish(source: Path, course: Path, message: str = "Notebooks from the course's install") -> str | None:
    """Commit ``source`` (a notebooks folder) as the course's newest version; the new commit, or None when
    nothing changed."""
    if not (course / "HEAD").exists():
        course.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", f"--initial-branch={BRANCH}", str(course))
    with tempfile.TemporaryDirectory(prefix="orders-course-") as scratch:
        work = Path(scratch) / "work"
        has_history = bool(_git("for-each-ref", "--count=1", f"refs/heads/{BRANCH}", cwd=course).strip())
        if has_history:
            _git("clone", "-q", "--branch", BRANCH, str(course), str(work))
        else:
            _git("init", "-q", f"--initial-branch={BRANCH}", str(work))
            _git("remote", "add", "origin", str(course), cwd=work)
        for entry in work.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        shutil.copytree(source, work, ignore=SKIP, dirs_exist_ok=True)
        _git("add", "-A", cwd=work)
        if has_history and not _git("status", "--porcelain", cwd=work).strip():
            _safe_config(course)
            _readable(course)
            return None
        _git(*AUTHOR, "commit", "-q", "-m", message, cwd=work)
        _git("push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}", cwd=work)
        commit = _git("rev-parse", "HEAD", cwd=work).strip()
    _safe_config(course)
    _readable(course)
    return commit


def _safe_config(course: Path) -> None:
    """What lets a student's git read the course that root owns (labkit/course.py sets it as their git's global
    configuration for a pull): ``safe.directory`` for the course, and their own ``~/.gitconfig`` included."""
    (course / "orders-safe.gitconfig").write_text(
        f"[safe]\n\tdirectory = {course.resolve()}\n[include]\n\tpath = ~/.gitconfig\n")

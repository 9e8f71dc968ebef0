"""The student's side of notebook updates on a classroom Hub: nbgitpuller's pull, and what changed, in words.

    python -m labkit.course pull COURSE_REPO NOTEBOOKS_DIR

Run as the student (by the Hub when their server starts, or by the class service when the instructor sends an
update). ``NOTEBOOKS_DIR`` is the student's clone of the Hub's course repository; nbgitpuller (pinned in
pyproject.toml) merges the course's new commits with its rules: a file the student changed keeps their changes
(``git merge -Xours``: where the course changed the same lines, the student's version stays), a file they never
changed is replaced, a file they deleted comes back, a file of theirs in the way of a new course file is
renamed aside. ``WHAT-CHANGED.md`` beside the folder then tells them, newest first, which notebooks were
replaced, which kept their edits, and the instructor's notes (the course commits' messages).
A folder from before updates existed (a plain copy, no git) is moved aside whole and a fresh clone made.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BRANCH = "main"
CHANGES = "WHAT-CHANGED.md"


SAFE_CONFIG = "orders-safe.gitconfig"  # in the course repository: see classroom/course_repo.py


def git_env(course: str) -> dict[str, str]:
    """The course repository belongs to root, and git reads another account's repository only when its global or
    system configuration names it in ``safe.directory`` (git 2.39 ignores ``-c`` for it when it fetches). The
    course carries such a file, which also includes the student's own ``~/.gitconfig``; it stands as the global
    configuration of these git commands only."""
    env = {**os.environ, "LANG": "C", "GIT_TERMINAL_PROMPT": "0"}
    safe = Path(course) / SAFE_CONFIG
    if safe.exists():
        env["GIT_CONFIG_GLOBAL"] = str(safe)
    return env


def _git(folder: Path, *args: str, course: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, env=git_env(course), check=True, capture_output=True,
                          text=True).stdout


def _valid_notebook(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("cells"), list)
    except (OSError, ValueError, AttributeError):
        return False


def pull(course: str, folder: Path) -> dict[str, Any]:
    """Bring the course's latest notebooks into ``folder``; what happened, as a dict (also written in words)."""
    from nbgitpuller.pull import GitPuller

    os.environ.update({k: v for k, v in git_env(course).items() if k.startswith("GIT_")})
    folder = Path(folder)
    summary: dict[str, Any] = {"replaced": [], "kept_edits": [], "added": [], "removed": [], "restored": [],
                               "moved_aside": None, "notes": [], "first_copy": False}
    if folder.exists() and not (folder / ".git").exists():
        aside = folder.with_name(f"{folder.name}-before-updates-{dt.datetime.now():%Y%m%d-%H%M%S}")
        folder.rename(aside)
        summary["moved_aside"] = str(aside)
    if not folder.exists():
        for _ in GitPuller(course, str(folder), branch=BRANCH, depth=0).pull():
            pass
        summary["first_copy"] = True
        return summary
    before = _git(folder, "rev-parse", f"origin/{BRANCH}", course=course).strip()
    edited = {line[3:] for line in _git(folder, "status", "--porcelain", course=course).splitlines()
              if line[:2].strip() in ("M", "MM", "AM")}
    for _ in GitPuller(course, str(folder), branch=BRANCH, depth=0).pull():
        pass
    after = _git(folder, "rev-parse", f"origin/{BRANCH}", course=course).strip()
    if before == after:
        return summary
    summary["notes"] = [n for n in _git(folder, "log", "--format=%s", f"{before}..{after}", course=course).splitlines()
                        if n]
    for line in _git(folder, "diff", "--name-status", before, after, course=course).splitlines():
        kind, name = line.split("\t", 1)
        if kind.startswith("A"):
            summary["added"].append(name)
        elif kind.startswith("D"):
            summary["removed"].append(name)
        elif name in edited:
            summary["kept_edits"].append(name)
            if name.endswith(".ipynb") and not _valid_notebook(folder / name):
                _keep_students_version(folder, name, after, course)
                summary["restored"].append(name)
        else:
            summary["replaced"].append(name)
    write_changes(folder.parent / CHANGES, summary)
    return summary


def _keep_students_version(folder: Path, name: str, course_commit: str, course: str) -> None:
    """A line merge that left a notebook unreadable: the student's version stays whole, the course's new one
    is put beside it as ``NAME.course.ipynb``."""
    mine = _git(folder, "show", f"HEAD^1:{name}", course=course)
    theirs = _git(folder, "show", f"{course_commit}:{name}", course=course)
    (folder / name).write_text(mine)
    (folder / (name.removesuffix(".ipynb") + ".course.ipynb")).write_text(theirs)
    _git(folder, "-c", "user.email=nbgitpuller@nbgitpuller.link", "-c", "user.name=nbgitpuller", "commit", "-q",
         "-am", f"Keep the student's {name} whole", course=course)


def write_changes(path: Path, summary: dict[str, Any]) -> None:
    lines = [f"## Notebook update, {dt.datetime.now():%Y-%m-%d %H:%M}", ""]
    if summary["notes"]:
        lines += ["Your instructor's notes:", ""] + [f"* {n}" for n in summary["notes"]] + [""]
    labels = (("replaced", "Replaced with the new version (you had not changed them)"),
              ("kept_edits", "Updated around your edits (where you changed a cell, your version stays)"),
              ("restored", "Kept exactly as you had them: the new version is beside each, as NAME.course.ipynb"),
              ("added", "New"), ("removed", "No longer in the course (any copy you changed stays)"))
    for key, label in labels:
        if summary[key]:
            lines += [f"{label}:", ""] + [f"* `{n}`" for n in summary[key]] + [""]
    old = path.read_text() if path.exists() else "# What changed in your notebooks\n\n"
    head, _, rest = old.partition("\n\n")
    path.write_text(head + "\n\n" + "\n".join(lines) + "\n" + rest)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "pull":
        print("usage: python -m labkit.course pull COURSE_REPO NOTEBOOKS_DIR", file=sys.stderr)
        return 2
    try:
        summary = pull(args[1], Path(args[2]).expanduser())
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or getattr(exc, "output", "") or ""
        print(json.dumps({"error": f"{exc} {detail}".strip()[-500:]}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The AWS CLI in a terminal, against the local cloud: what ``eval "$(labkit cloud env)"`` sets up.

Which CLI: pip's AWS CLI v1 (``awscli`` in pyproject.toml, so ``make setup`` puts ``aws`` in ``.venv/bin``). AWS CLI
v2 is not on PyPI (AWS ships it as an installer that downloads a bundle, which a set-up without internet beyond the
package registries cannot fetch), and Debian 12's ``awscli`` package is v2.9, older than v2.13, the first to read
``AWS_ENDPOINT_URL``.

Why a wrapper: v1 reads ``AWS_ENDPOINT_URL`` through botocore for most services, but its customization
``overridesslcommonname`` sets the endpoint of ``rds`` (and ``docdb``, ``neptune``) in us-east-1, and of ``sqs``,
``emr`` and ``health`` in most regions, to AWS's own host unless ``--endpoint-url`` is given: so
``aws rds describe-events`` after ``eval "$(labkit cloud env)"`` went to rds.amazonaws.com. ``labkit cloud env`` writes
``<home>/bin/aws``, which runs the CLI with ``--endpoint-url "$AWS_ENDPOINT_URL"`` (later options of the student's own
win), and puts that folder first on ``PATH``. With the environment unset (another shell) it passes nothing; once the
cloud's home is gone the next ``aws`` on ``PATH`` answers. On AWS no wrapper is needed: the CLI's own endpoints are
AWS's. For v1 the wrapper also drops v2's ``--cli-binary-format raw-in-base64-out`` (v1 sends a blob as given), so
the commands labkit shows for ``lambda invoke`` run on either.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

WRAPPER = """#!/bin/sh
# The AWS CLI against the local cloud, written by `labkit cloud env` (labkit/awscli.py says why): pip's AWS CLI v1
# sends rds calls in us-east-1 to rds.amazonaws.com unless --endpoint-url is given, whatever AWS_ENDPOINT_URL says.
if [ ! -x {aws} ]; then
  echo "aws: the AWS CLI is not installed at {aws}: run make setup (it installs pip's awscli into .venv)" >&2
  exit 127
fi
{v1_options}if [ -n "${{AWS_ENDPOINT_URL:-}}" ]; then
  exec {aws} --endpoint-url "$AWS_ENDPOINT_URL" "$@"
fi
exec {aws} "$@"
"""


# v2's option for blob parameters, in the commands labkit shows (`aws lambda invoke ... --cli-binary-format
# raw-in-base64-out`): v1 has no such option and already sends a blob as it is given, so its wrapper drops it.
V1_OPTIONS = """skip=
for arg do
  shift
  if [ -n "$skip" ]; then
    skip=
    [ "$arg" = raw-in-base64-out ] && continue
    set -- "$@" --cli-binary-format "$arg"
    continue
  fi
  case "$arg" in
    --cli-binary-format) skip=1; continue ;;
    --cli-binary-format=raw-in-base64-out) continue ;;
  esac
  set -- "$@" "$arg"
done
[ -n "$skip" ] && set -- "$@" --cli-binary-format
"""


def major_version(aws: Path) -> int | None:
    """The AWS CLI's major version: the installed ``awscli`` package's for the project's own, else what
    ``aws --version`` prints (``aws-cli/1.46.3 ...``); None when it cannot tell."""
    if aws == Path(sys.executable).with_name("aws"):
        try:
            return int(metadata.version("awscli").split(".")[0])
        except (metadata.PackageNotFoundError, ValueError):
            pass
    try:
        done = subprocess.run([str(aws), "--version"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    except OSError:
        return None
    text = (done.stdout or done.stderr).strip()
    major = text.removeprefix("aws-cli/").split(".", 1)[0]
    return int(major) if text.startswith("aws-cli/") and major.isdigit() else None


def installed_cli() -> Path:
    """The ``aws`` beside the Python running labkit (the project's ``.venv/bin/aws``), else the first on PATH."""
    beside = Path(sys.executable).with_name("aws")
    if beside.is_file():
        return beside
    found = shutil.which("aws")
    return Path(found) if found else beside


def write_wrapper(home: Path, aws: Path | None = None) -> Path:
    """Write ``<home>/bin/aws`` (idempotent) and return its folder, which goes first on PATH."""
    folder = Path(home).resolve() / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    target = aws or installed_cli()
    if target.resolve().parent == folder:  # never the wrapper itself
        target = Path(sys.executable).with_name("aws")
    v1 = target.exists() and major_version(target) == 1
    script = WRAPPER.format(aws=shlex.quote(str(target)), v1_options=V1_OPTIONS if v1 else "")
    wrapper = folder / "aws"
    if not wrapper.exists() or wrapper.read_text() != script:
        temporary = folder / f".aws.{os.getpid()}"
        temporary.write_text(script)
        temporary.chmod(0o755)
        temporary.replace(wrapper)
    return folder


def shell_lines(env: dict[str, str], home: Path) -> list[str]:
    """What ``labkit cloud env`` prints for ``eval``: the variables, then the wrapper's folder first on PATH."""
    folder = write_wrapper(home)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    quoted = shlex.quote(str(folder))
    lines += ["# `aws` here runs the AWS CLI with --endpoint-url $AWS_ENDPOINT_URL (pip's AWS CLI v1 ignores the "
              "variable for rds): labkit/awscli.py",
              f'case ":$PATH:" in *:{quoted}:*) ;; *) export PATH={quoted}:"$PATH" ;; esac']
    return lines

"""The functions' Lambda runtime, per target, and the pip options of the layer's wheels for it.

One source for the functions' ``Runtime``, the layer's ``CompatibleRuntimes`` and the pip options of the layer's
compiled wheels (cryptography, cffi), so the three always agree.

* On ``aws`` the runtime is :data:`AWS_RUNTIME`, whatever Python this machine has: a runtime AWS supports
  longest (AWS deprecates a runtime when its Python's community support ends, then blocks creating functions on
  it a month later: python3.10 was deprecated in 2026, python3.11 is in 2027). The layer's wheels are for it.
* On ``local`` it is the Python of the Lambda runtime environment ``make setup`` built (.venv-lambda), which runs
  the functions: python3.11 when the machine has it, else the newest of python3.13/3.12/3.10.

``python -m labkit.lambda_platform`` prints the pip options of the local runtime's wheels, ``... --aws`` those of
:data:`AWS_RUNTIME` (the Makefile downloads both), and ``... --rebuild-reason VENV pythonX.Y`` why ``make setup``
must build VENV anew for that runtime (nothing when it need not).
"""
from __future__ import annotations

import configparser
import os
import re
import sys
from pathlib import Path

from labkit.errors import ConfigError

LAMBDA_VENV = Path(__file__).resolve().parents[1] / ".venv-lambda"
ARCHITECTURE = "x86_64"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# AWS Lambda's Python runtimes and their deprecation dates ("Building Lambda functions with Python", AWS Lambda
# Developer Guide, read 2026-12-04); creating, then updating, a function on it is blocked weeks to months later.
# python3.13 is deprecated last of those with a full set of wheels (python3.14 too, on the same day).
AWS_DEPRECATION = {"python3.10": "2026-10-31", "python3.11": "2027-06-30", "python3.12": "2028-10-31",
                   "python3.13": "2029-06-30", "python3.14": "2029-06-30"}
AWS_RUNTIME = "python3.13"


def lambda_venv() -> Path:
    """The Lambda runtime environment the local cloud runs functions with: the one of ``LABKIT_LAMBDA_PYTHON``
    when set (as the cloud's Lambda service reads it), else this project's ``.venv-lambda``."""
    python = os.environ.get("LABKIT_LAMBDA_PYTHON")
    return Path(python).parent.parent if python else LAMBDA_VENV


def runtime(venv: Path | None = None) -> str:
    """``pythonX.Y`` of the Lambda runtime environment ``venv`` (default :func:`lambda_venv`), from its
    ``pyvenv.cfg``."""
    venv = venv or lambda_venv()
    cfg = venv / "pyvenv.cfg"
    try:
        text = cfg.read_text()
    except OSError as exc:
        raise ConfigError(f"the Lambda runtime environment {venv} is missing ({exc.strerror}): it decides the "
                          "functions' Python runtime", "run `make setup`") from exc
    parser = configparser.ConfigParser()
    parser.read_string("[venv]\n" + text)
    version = parser.get("venv", "version", fallback="") or parser.get("venv", "version_info", fallback="")
    found = re.match(r"(3)\.(\d+)\.", version.strip() + ".")
    if not found:
        raise ConfigError(f"{cfg} names no Python version (version = {version!r})",
                          f"delete {venv} and run `make setup`")
    return f"python{found[1]}.{found[2]}"


def rebuild_reason(venv: Path, wanted: str) -> str:
    """Why the Lambda runtime environment ``venv`` must be built anew to be the runtime ``wanted``
    (``python3.12``, the Python ``make setup`` chose), or ``""`` when it is that runtime already: an environment
    of another Python (python3.11 removed, 3.12 chosen now) would run the functions, and decide the layer's
    wheels, on the wrong runtime."""
    if not (venv / "pyvenv.cfg").exists():
        return f"{venv} has no pyvenv.cfg"
    try:
        have = runtime(venv)
    except ConfigError as exc:
        return str(exc)
    if have != wanted:
        return f"it is {have}, and the Lambda runtime is now {wanted}"
    python = venv / "bin" / "python"
    if not os.access(python, os.X_OK):  # a link to an interpreter that has gone
        return f"its interpreter {python} is gone"
    return ""


def layer_platform(runtime_name: str, architecture: str = ARCHITECTURE) -> tuple[str, ...]:
    """pip's options for wheels that load on AWS Lambda's ``runtime_name`` (``python3.12``) and ``architecture``."""
    version = runtime_name.removeprefix("python")
    return ("--platform", PLATFORMS[architecture], "--python-version", version, "--implementation", "cp",
            "--abi", "cp" + version.replace(".", ""), "--abi", "abi3", "--abi", "none")


if __name__ == "__main__":  # the Makefile: pip download $(python -m labkit.lambda_platform [--aws]) ...
    if sys.argv[1:2] == ["--rebuild-reason"] and len(sys.argv) == 4:
        print(rebuild_reason(Path(sys.argv[2]), sys.argv[3]))
        sys.exit(0)
    if sys.argv[1:] == ["--aws"]:
        print(" ".join(layer_platform(AWS_RUNTIME)))
        sys.exit(0)
    try:
        print(" ".join(layer_platform(runtime())))
    except ConfigError as exc:
        sys.exit(str(exc))

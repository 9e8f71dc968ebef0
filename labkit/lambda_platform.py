"""The functions' Lambda runtime: the Python of the Lambda runtime environment ``make setup`` built (.venv-lambda).

One source for the functions' ``Runtime``, the layer's ``CompatibleRuntimes`` and the pip options of the layer's
compiled wheels (cryptography, cffi), so the three always agree, on both targets. ``make setup`` builds
.venv-lambda with python3.11 when the machine has it, else the newest of python3.13/3.12/3.10 (all AWS Lambda
runtimes); ``python -m labkit.lambda_platform`` prints the pip options the Makefile downloads the wheels with, and
``python -m labkit.lambda_platform --rebuild-reason VENV pythonX.Y`` why ``make setup`` must build VENV anew for
that runtime (nothing when it need not).
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


if __name__ == "__main__":  # the Makefile: pip download $(python -m labkit.lambda_platform) ...
    if sys.argv[1:2] == ["--rebuild-reason"] and len(sys.argv) == 4:
        print(rebuild_reason(Path(sys.argv[2]), sys.argv[3]))
        sys.exit(0)
    try:
        print(" ".join(layer_platform(runtime())))
    except ConfigError as exc:
        sys.exit(str(exc))

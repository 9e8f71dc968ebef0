"""The functions' runtime and architecture, the layer's wheels and the RDS CA bundle agree (issue 13 item 8)."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import ConfigError, config, functions, lambda_platform
from labkit.localcloud.awslambda import service as lambda_service
from labkit.localcloud.rds import tls as rds_tls

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def test_make_setup_downloads_the_layer_wheels_for_the_functions_platform():
    text = MAKEFILE.read_text().replace("\\\n", " ")
    download = next(line for line in text.splitlines() if "pip download" in line and "layers/pymysql" in line)
    assert "$(BIN)/python -m labkit.lambda_platform $$which" in download and "$$platform" in download
    assert 'for which in "" --aws' in download  # the local runtime's wheels and AWS's
    printed = subprocess.run([sys.executable, "-m", "labkit.lambda_platform"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert tuple(printed) == functions.LAYER_PLATFORM
    for_aws = subprocess.run([sys.executable, "-m", "labkit.lambda_platform", "--aws"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert tuple(for_aws) == lambda_platform.layer_platform(lambda_platform.AWS_RUNTIME)
    assert functions.LAYER_PLATFORM[1] == {"x86_64": "manylinux2014_x86_64"}[functions.ARCHITECTURE]
    assert functions.RUNTIME == "python" + functions.LAYER_PLATFORM[3]


@pytest.mark.parametrize("cfg, runtime", [
    ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n", "python3.12"),
    ("home = /usr/bin\nversion_info = 3.13.0.final.0\n", "python3.13"),  # uv's form
    ("version = 3.11.2\n", "python3.11"),
])
def test_the_runtime_is_the_lambda_environments_python(tmp_path, cfg, runtime):
    (tmp_path / "pyvenv.cfg").write_text(cfg)
    assert lambda_platform.runtime(tmp_path) == runtime


def test_the_layer_wheels_follow_the_runtime():
    assert lambda_platform.layer_platform("python3.13") == (
        "--platform", "manylinux2014_x86_64", "--python-version", "3.13", "--implementation", "cp",
        "--abi", "cp313", "--abi", "abi3", "--abi", "none")
    assert lambda_platform.layer_platform("python3.10", "arm64")[1] == "manylinux2014_aarch64"


@pytest.mark.parametrize("cfg", [None, "home = /usr/bin\n"])
def test_a_missing_or_odd_lambda_environment_says_make_setup(tmp_path, cfg):
    if cfg is not None:
        (tmp_path / "pyvenv.cfg").write_text(cfg)
    with pytest.raises(ConfigError, match="make setup"):
        lambda_platform.runtime(tmp_path)


@pytest.mark.parametrize("present, chosen", [
    (["python3.10", "python3.11", "python3.12", "python3.13"], "python3.11"),  # this machine: as always
    (["python3.10", "python3.12", "python3.13"], "python3.13"),  # Debian 13 with extras: the newest
    (["python3.12"], "python3.12"),  # Ubuntu 24.04
    (["python3.10"], "python3.10"),  # Ubuntu 22.04
    ([], "python3"),  # none: $(PYTHON), and labkit then derives the runtime from what it built
])
def test_make_setup_chooses_the_lambda_python(tmp_path, present, chosen):
    for name in present:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    shown = subprocess.run([shutil.which("make"), "-s", "-f", str(MAKEFILE), "--eval", "x: ; $(info $(LAMBDA_PYTHON))",
                            "x"], capture_output=True, text=True, check=True, cwd=tmp_path,
                           env={"PATH": str(tmp_path)}).stdout.strip()
    assert Path(shown).name == chosen


def test_the_local_lambda_runtime_is_the_functions_python():
    """The local cloud runs a function on .venv-lambda's interpreter: it must be the functions' runtime version
    (else the layer's compiled wheels do not load; the local cloud then refuses to run it, saying so)."""
    version = lambda_service.python_version(lambda_service.runtime_python())  # 3.11.7
    assert "python" + ".".join(version.split(".")[:2]) == functions.RUNTIME


def _serve(monkeypatch, tmp_path, body: bytes | Exception) -> list[str]:
    calls: list[str] = []

    def urlopen(url, timeout):
        calls.append(url)
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)

    monkeypatch.setattr(config, "RDS_CA_CACHE", tmp_path / "rds-global-bundle.pem")
    monkeypatch.setattr(config.urllib.request, "urlopen", urlopen)
    return calls


def test_on_aws_the_bundle_is_rds_global_bundle_downloaded_once(monkeypatch, tmp_path):
    authority, _key = rds_tls.ensure_ca(tmp_path / "ca")
    calls = _serve(monkeypatch, tmp_path, authority.read_bytes() * 2)
    target = config.AwsTarget(config.LabConfig(target="aws", region="eu-west-1"))
    assert target.db_ca_bundle() == authority.read_bytes() * 2
    assert target.db_ca_bundle() == (tmp_path / "rds-global-bundle.pem").read_bytes()
    assert calls == [config.RDS_CA_URL]  # cached after the first download


@pytest.mark.parametrize("body, message", [
    (OSError("no route to host"), "could not download the RDS CA bundle .* no route to host"),
    (b"<html>captive portal</html>", "did not return CA certificates"),
])
def test_a_bundle_that_cannot_be_had_is_a_clear_error_and_nothing_is_cached(monkeypatch, tmp_path, body, message):
    _serve(monkeypatch, tmp_path, body)
    target = config.AwsTarget(config.LabConfig(target="aws", region="eu-west-1"))
    with pytest.raises(ConfigError, match=message) as caught:
        target.db_ca_bundle()
    assert re.search("download .* yourself to", caught.value.hint or str(caught.value))
    assert not (tmp_path / "rds-global-bundle.pem").exists()


def test_a_server_certificate_is_not_taken_for_a_bundle(monkeypatch, tmp_path):
    files = rds_tls.issue_server_files(tmp_path / "ca", tmp_path / "db", "db-1", ("127.0.0.5",))
    _serve(monkeypatch, tmp_path, files.cert.read_bytes())
    with pytest.raises(ConfigError, match="not certificate authorities"):
        config.AwsTarget(config.LabConfig(target="aws", region="eu-west-1")).db_ca_bundle()


def test_the_runtime_follows_the_interpreter_the_cloud_is_told_to_use(tmp_path, monkeypatch):
    """LABKIT_LAMBDA_PYTHON (a clone sharing another checkout's Lambda environment) decides the runtime too."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.12.1\n")
    monkeypatch.setenv("LABKIT_LAMBDA_PYTHON", str(tmp_path / "bin" / "python"))
    assert lambda_platform.lambda_venv() == tmp_path and lambda_platform.runtime() == "python3.12"


def _venv(path: Path, version: str | None, interpreter: bool = True) -> Path:
    (path / "bin").mkdir(parents=True)
    if version is not None:
        (path / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {version}\n")
    if interpreter:
        (path / "bin" / "python").symlink_to(sys.executable)
    return path


@pytest.mark.parametrize("version, interpreter, reason", [
    ("3.12.3", True, ""),
    ("3.12.9", True, ""),  # a patch release is the same runtime
    ("3.11.7", True, "it is python3.11, and the Lambda runtime is now python3.12"),
    ("3.12.3", False, "its interpreter .*/bin/python is gone"),
    (None, True, ".*venv has no pyvenv.cfg"),
])
def test_the_lambda_environment_is_built_anew_when_it_is_not_the_chosen_runtime(tmp_path, version, interpreter,
                                                                                reason):
    found = lambda_platform.rebuild_reason(_venv(tmp_path / "venv", version, interpreter), "python3.12")
    assert re.fullmatch(reason, found) if reason else found == ""


FAKE_PYTHON = """#!/bin/sh
# A Python {version} for make: says its version, makes a venv (whose pip notes what it is asked).
case "$1" in
  -c) echo python{version} ;;
  -m) mkdir -p "$3/bin" && printf 'home = /fake\\nversion = {version}.0\\n' > "$3/pyvenv.cfg" &&
      ln -s "$0" "$3/bin/python" && printf '#!/bin/sh\\necho "$@" >> "%s/pip.log"\\n' "$3" > "$3/bin/pip" &&
      chmod +x "$3/bin/pip" ;;
esac
"""


def _make(scratch: Path, python: str, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("make"), "-f", str(MAKEFILE), f"LAMBDA_PYTHON={python}", *targets],
                          cwd=scratch, capture_output=True, text=True)


def test_make_setup_builds_the_lambda_environment_anew_when_its_python_changes(tmp_path):
    """python3.11 gone, python3.12 chosen: .venv-lambda (a 3.11 one) is built anew with 3.12, the layer's wheels
    are fetched again for it; a second run changes nothing."""
    scratch = tmp_path / "lab"
    for name in ("lambda_code/runtime-requirements.txt", "lambda_code/layers/pymysql/requirements.txt",
                 "flask_app/requirements.txt", "pyproject.toml", "jupyter/overrides.json",
                 "scripts/ensure-system-packages.sh", "scripts/apt-install.sh"):
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text("")
    (scratch / ".venv").symlink_to(Path(sys.executable).parent.parent)  # runs labkit.lambda_platform
    for version in ("3.11", "3.12"):
        fake = tmp_path / "bin" / f"python{version}"
        fake.parent.mkdir(exist_ok=True)
        fake.write_text(FAKE_PYTHON.format(version=version))
        fake.chmod(0o755)
    stamps = scratch / ".cache" / "stamps"
    stamps.mkdir(parents=True)
    for stamp in ("system-packages", "venv"):
        (stamps / stamp).touch()
    built = _make(scratch, str(tmp_path / "bin" / "python3.11"), ".cache/stamps/lambda-venv")
    assert built.returncode == 0, built.stderr
    (stamps / "wheels").touch()  # the wheels fetched for 3.11 (pip download needs a network: not run here)

    chosen = str(tmp_path / "bin" / "python3.12")
    rebuilt = _make(scratch, chosen, ".cache/stamps/lambda-venv")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "building .venv-lambda anew: it is python3.11, and the Lambda runtime is now python3.12" in rebuilt.stdout
    assert lambda_platform.runtime(scratch / ".venv-lambda") == "python3.12"
    assert (scratch / ".venv-lambda" / "pip.log").read_text().count("install") == 1  # the old venv is gone
    built_at = (stamps / "lambda-venv").stat().st_mtime_ns
    assert built_at > (stamps / "wheels").stat().st_mtime_ns  # so make fetches the wheels again, for 3.12

    again = _make(scratch, chosen, ".cache/stamps/lambda-venv")
    assert again.returncode == 0 and "anew" not in again.stdout
    assert (stamps / "lambda-venv").stat().st_mtime_ns == built_at  # the same choice: nothing to do


# -- the runtime on AWS (issue 25 item 8) -------------------------------------------------------------------------
def test_on_aws_the_runtime_is_one_aws_supports_whatever_the_machine_has(tmp_path, monkeypatch):
    """A machine with only python3.10 builds .venv-lambda with it; AWS deprecated python3.10 in 2026, so the
    functions there use AWS_RUNTIME, and the layer's wheels follow it; the local cloud keeps .venv-lambda's."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.10.12\n")
    monkeypatch.setenv("LABKIT_LAMBDA_PYTHON", str(tmp_path / "bin" / "python"))
    aws = config.AwsTarget(config.LabConfig(target="aws", region="eu-west-1"))
    assert aws.lambda_runtime() == lambda_platform.AWS_RUNTIME == "python3.13"
    assert lambda_platform.runtime() == "python3.10"  # what runs the functions on the local cloud
    deprecated = lambda_platform.AWS_DEPRECATION
    assert deprecated[lambda_platform.AWS_RUNTIME] == max(deprecated.values())  # supported longest
    assert deprecated["python3.10"] < "2026-12-04" < deprecated["python3.11"]


def test_the_aws_layer_is_built_from_the_aws_runtimes_wheels(monkeypatch):
    """The layer for AWS carries cffi for python3.13 (cp313), the local one for .venv-lambda's Python."""
    import zipfile

    monkeypatch.setenv("PIP_NO_INDEX", "1")
    names = zipfile.ZipFile(io.BytesIO(functions.build_layer(lambda_platform.AWS_RUNTIME))).namelist()
    assert any(re.search(r"_cffi_backend\.cpython-313-x86_64-linux-gnu\.so$", n) for n in names), names[:20]
    local = functions.RUNTIME.removeprefix("python").replace(".", "")
    names = zipfile.ZipFile(io.BytesIO(functions.build_layer())).namelist()
    assert any(re.search(rf"_cffi_backend\.cpython-{local}-x86_64-linux-gnu\.so$", n) for n in names)

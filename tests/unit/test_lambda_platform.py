"""The functions' runtime and architecture, the layer's wheels and the RDS CA bundle agree (issue 13 item 8)."""
from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from labkit import ConfigError, config, functions
from labkit.localcloud import lambda_service, rds_tls

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def test_make_setup_downloads_the_layer_wheels_for_the_functions_platform():
    text = MAKEFILE.read_text().replace("\\\n", " ")
    download = next(line for line in text.splitlines() if "pip download" in line and "layers/pymysql" in line)
    assert " ".join(functions.LAYER_PLATFORM) in " ".join(shlex.split(download))
    assert functions.LAYER_PLATFORM[1] == {"x86_64": "manylinux2014_x86_64"}[functions.ARCHITECTURE]
    assert functions.RUNTIME == "python" + functions.LAYER_PLATFORM[3]


def test_the_local_lambda_runtime_is_the_functions_python():
    """The local cloud runs a function on .venv-lambda's interpreter: it must be the functions' runtime version
    (else the layer's compiled wheels do not load; the local cloud then refuses to run it, saying so)."""
    assert "python" + lambda_service.python_version(lambda_service.runtime_python()) == functions.RUNTIME


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

"""The Lambdas require their environment variables at init: no default secret name, no empty bucket."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from orders_db import ConfigurationError, required_setting, secret_name

ROOT = Path(__file__).resolve().parents[2]


def _init(function: str):
    """Import ``lambda_code/<function>/lambda_function.py`` as Lambda's init does (module-level code runs)."""
    spec = importlib.util.spec_from_file_location(f"init_{function}", ROOT / "lambda_code" / function / "lambda_function.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("value", [None, "", "   "])
def test_db_secret_name_is_required_and_the_error_names_it(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("DB_SECRET_NAME", raising=False)
    else:
        monkeypatch.setenv("DB_SECRET_NAME", value)
    with pytest.raises(ConfigurationError, match="environment variable DB_SECRET_NAME is not set") as caught:
        secret_name()
    assert "order-db-secret" in str(caught.value)  # says what it should hold


def test_a_set_variable_is_used_as_given(monkeypatch):
    monkeypatch.setenv("DB_SECRET_NAME", "another-secret")
    assert secret_name() == "another-secret"
    monkeypatch.setenv("REPORT_BUCKET", " lab-reports ")
    assert required_setting("REPORT_BUCKET", "a bucket") == "lab-reports"


@pytest.mark.parametrize("function,missing,present", [
    ("order_validator", "DB_SECRET_NAME", {}),
    ("daily_report", "REPORT_BUCKET", {"DB_SECRET_NAME": "order-db-secret"}),
    ("daily_report", "DB_SECRET_NAME", {"REPORT_BUCKET": "lab-reports"}),
])
def test_a_function_without_its_variable_fails_at_init(monkeypatch, function, missing, present):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("DB_SECRET_NAME", "REPORT_BUCKET", "MIN_ORDER_AMOUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"{missing} is not set"):
        _init(function)


def test_a_function_with_its_variables_initialises(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DB_SECRET_NAME", "order-db-secret")
    monkeypatch.setenv("REPORT_BUCKET", "lab-reports")
    assert _init("order_validator").database.secret_id == "order-db-secret"
    assert _init("daily_report").BUCKET == "lab-reports"

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "flask_app"))
from app import create_app
from validator import ValidationResult, ValidatorUnavailable


class FakeValidator:
    """Stands in for the Lambda in unit tests: records what was sent, answers what it is told."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.stored: dict[str, dict] = {}
        self.answer: ValidationResult | Exception = ValidationResult("accepted", order_id="11111111-2222-4333-8444-555555555555")

    def submit(self, order: dict) -> ValidationResult:
        self.sent.append(order)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def find(self, order_id: str) -> dict | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.stored.get(order_id)


@pytest.fixture()
def validator() -> FakeValidator:
    return FakeValidator()


@pytest.fixture()
def app(validator):
    return create_app({"VALIDATOR": validator, "WTF_CSRF_ENABLED": False, "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


__all__ = ["ValidationResult", "ValidatorUnavailable"]

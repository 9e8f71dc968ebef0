"""Pure validation of an order event: no I/O, so unit tests call it directly."""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_TEXT = 100
MAX_QUANTITY = 1000
MAX_AMOUNT = Decimal("1000000.00")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ASCII digits only: Python's int() and Decimal() also read "١٢" and "１２", which no order form means.
INTEGER = re.compile(r"^[+]?[0-9]+$")
DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_name: str
    product: str
    quantity: int
    amount: Decimal


def _text(value: Any, label: str) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, f"{label} is required and must be text"
    if not is_valid_unicode(value):
        return None, f"{label} must be valid Unicode text (it holds an unpaired surrogate such as \\ud800)"
    text = value.strip()
    if not text:
        return None, f"{label} must not be empty"
    if len(text) > MAX_TEXT:
        return None, f"{label} must be at most {MAX_TEXT} characters"
    if CONTROL.search(text):
        return None, f"{label} must not contain control characters"
    return text, None


def is_valid_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (JSON allows ``"\\ud800"``; UTF-8 and MySQL do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_quantity(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool) or value is None:
        return None, "quantity must be a whole number from 1 to 1000"
    if isinstance(value, str):
        if not INTEGER.match(value.strip()):
            return None, "quantity must be a whole number from 1 to 1000, written with the digits 0-9"
        value = int(value.strip())
    if not isinstance(value, int):
        return None, "quantity must be a whole number from 1 to 1000"
    if not 1 <= value <= MAX_QUANTITY:
        return None, "quantity must be from 1 to 1000"
    return value, None


def parse_minimum(text: str | None) -> Decimal | None:
    """The optional smallest amount an order may have (the ``MIN_ORDER_AMOUNT`` environment variable).

    None or empty: no minimum beyond "greater than 0". Anything else must be a valid amount (0.01 to
    1,000,000.00, at most two decimal places); otherwise ValueError names the variable and the value.
    """
    if text is None or not text.strip():
        return None
    minimum, error = parse_amount(text)
    if error:
        raise ValueError(f"MIN_ORDER_AMOUNT={text!r} is not a valid amount: {error}")
    return minimum


def parse_amount(value: Any, minimum: Decimal | None = None) -> tuple[Decimal | None, str | None]:
    """Decimal amount > 0 (and >= ``minimum`` when given) and <= 1,000,000.00 with at most two decimal places.

    Floats are read through their shortest decimal text (``0.1`` is ``Decimal("0.1")``);
    booleans, NaN, infinities, empty and non-numeric values are invalid.
    """
    if isinstance(value, bool) or value is None:
        return None, "amount must be a number"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, "amount must be a finite number"
        value = repr(value)
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, Decimal):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None, "amount must be a number"
    if not DECIMAL.match(value.strip()):
        return None, "amount must be a number written with the digits 0-9, such as 12.50"
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None, "amount must be a number"
    if not amount.is_finite():
        return None, "amount must be a finite number"
    if amount <= 0:
        return None, "amount must be greater than 0"
    if minimum is not None and amount < minimum:
        return None, f"amount must be at least {minimum}"
    if amount > MAX_AMOUNT:
        return None, "amount must be at most 1000000.00"
    exponent = amount.as_tuple().exponent  # an int: the amount is finite ("n", "N", "F" mark NaN and infinity)
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        return None, "amount must have at most 2 decimal places"
    return amount.quantize(Decimal("0.01")), None


def parse_order_id(value: Any) -> tuple[str | None, str | None]:
    if value is None or value == "":
        return str(uuid.uuid4()), None
    if not isinstance(value, str) or not value.isascii():
        return None, "order_id must be a UUID string"
    try:
        return str(uuid.UUID(value.strip())), None
    except ValueError:
        return None, "order_id must be a UUID such as 3f1c2a9e-8d4b-4c6e-9a8f-1b2c3d4e5f60"


def validate_order(event: Any, minimum: Decimal | None = None) -> tuple[Order | None, dict[str, str]]:
    """Return the order, or None and a message per invalid field; ``minimum``: the smallest amount allowed."""
    if not isinstance(event, dict):
        return None, {"order": "the order must be a JSON object"}
    customer, customer_error = _text(event.get("customer_name"), "customer_name")
    product, product_error = _text(event.get("product"), "product")
    quantity, quantity_error = parse_quantity(event.get("quantity"))
    amount, amount_error = parse_amount(event.get("amount"), minimum)
    order_id, id_error = parse_order_id(event.get("order_id"))
    errors = {field: message for field, message in (
        ("customer_name", customer_error), ("product", product_error), ("quantity", quantity_error),
        ("amount", amount_error), ("order_id", id_error)) if message}
    if errors:
        return None, errors
    # each parser returns a value or an error, never neither: no error means every value is there
    assert customer is not None and product is not None and quantity is not None and amount is not None
    assert order_id is not None
    return Order(order_id, customer, product, quantity, amount), {}

"""Order validation: pure functions, property-based where the input space is large."""
from __future__ import annotations

import math
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from validation import parse_amount, validate_order

VALID = {"customer_name": "Ada Lovelace", "product": "Notebook", "quantity": 2, "amount": "19.99"}


def test_valid_order_is_normalised():
    order, errors = validate_order({**VALID, "customer_name": "  Ada  ", "amount": 5})
    assert errors == {}
    assert order.customer_name == "Ada" and order.amount == Decimal("5.00")
    assert uuid.UUID(order.order_id).version == 4


@pytest.mark.parametrize("amount", [0, -1, "abc", float("nan"), float("inf"), 1e309, "0.001", "", None, True,
                                    "NaN", "Infinity", "-0.01", "1000000.01", [], {}])
def test_invalid_amounts(amount):
    order, errors = validate_order({**VALID, "amount": amount})
    assert order is None and set(errors) == {"amount"}


@pytest.mark.parametrize("amount,expected", [(0.1, "0.10"), ("12.5", "12.50"), (1000000, "1000000.00"),
                                             ("0.01", "0.01"), (" 7 ", "7.00"), ("1.230", "1.23")])
def test_valid_amounts(amount, expected):
    assert parse_amount(amount) == (Decimal(expected), None)


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000.00"), places=2))
def test_every_two_place_amount_in_range_is_accepted(amount):
    assert parse_amount(str(amount))[0] == amount


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_read_through_their_decimal_text(value):
    amount, error = parse_amount(value)
    text = Decimal(repr(value)) if math.isfinite(value) else None
    ok = text is not None and Decimal("0") < text <= Decimal("1000000") and text == text.quantize(Decimal("0.01"))
    assert (error is None) == ok
    if ok:
        assert amount == text


@given(st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: d.normalize().as_tuple().exponent < -2))
def test_more_than_two_places_is_rejected(amount):
    assert parse_amount(str(amount))[1] is not None


@given(st.text(max_size=300))
def test_text_fields_accept_exactly_1_to_100_printable_characters(text):
    order, errors = validate_order({**VALID, "product": text})
    stripped = text.strip()
    printable = not any(ord(c) < 32 or ord(c) == 127 for c in stripped)
    assert (order is not None) == (1 <= len(stripped) <= 100 and printable)
    if order:
        assert order.product == stripped


@pytest.mark.parametrize("quantity", [0, 1001, -3, 1.5, "2.0", True, None, "many"])
def test_invalid_quantities(quantity):
    assert set(validate_order({**VALID, "quantity": quantity})[1]) == {"quantity"}


def test_quantity_as_digit_string_is_accepted():
    assert validate_order({**VALID, "quantity": "12"})[0].quantity == 12


def test_order_id_must_be_a_uuid_and_is_canonicalised():
    given_id = "3F1C2A9E-8D4B-4C6E-9A8F-1B2C3D4E5F60"
    assert validate_order({**VALID, "order_id": given_id})[0].order_id == given_id.lower()
    assert set(validate_order({**VALID, "order_id": "1; DROP TABLE orders"})[1]) == {"order_id"}


def test_all_errors_are_reported_at_once():
    order, errors = validate_order({"quantity": 0, "amount": 0})
    assert order is None and set(errors) == {"customer_name", "product", "quantity", "amount"}


def test_non_object_event():
    assert validate_order(["not", "an", "object"]) == (None, {"order": "the order must be a JSON object"})


@pytest.mark.parametrize("field, value", [("quantity", "١"), ("quantity", "２"), ("amount", "١٢"), ("amount", "１２"),
                                          ("amount", "12.5\u0662")])
def test_only_ascii_digits_are_numbers(field, value):
    order, errors = validate_order({**VALID, field: value})
    assert order is None and "0-9" in errors[field]


def test_ascii_numbers_in_text_are_read():
    order, errors = validate_order({**VALID, "quantity": " 3 ", "amount": "12.50"})
    assert errors == {} and order.quantity == 3 and order.amount == Decimal("12.50")


@pytest.mark.parametrize("field", ["customer_name", "product"])
def test_lone_surrogates_are_invalid_text(field):
    order, errors = validate_order({**VALID, field: "\ud800x"})
    assert order is None and "valid Unicode" in errors[field]


def test_a_minimum_amount_refuses_smaller_orders_with_its_value():
    from validation import parse_minimum

    minimum = parse_minimum("1.00")
    order, errors = validate_order({**VALID, "amount": "0.50"}, minimum)
    assert order is None and errors == {"amount": "amount must be at least 1.00"}
    assert validate_order({**VALID, "amount": "1.00"}, minimum)[0].amount == Decimal("1.00")
    assert validate_order({**VALID, "amount": 0}, minimum)[1] == {"amount": "amount must be greater than 0"}


@pytest.mark.parametrize("text", [None, "", "  "])
def test_no_minimum_unless_set(text):
    from validation import parse_minimum

    assert parse_minimum(text) is None


@pytest.mark.parametrize("text", ["abc", "0", "-1", "0.001", "2000000"])
def test_a_bad_minimum_names_the_variable(text):
    from validation import parse_minimum

    with pytest.raises(ValueError, match=r"MIN_ORDER_AMOUNT="):
        parse_minimum(text)

"""Parsing the RDS secret never echoes it."""
from __future__ import annotations

import json

import pytest
from orders_db import SecretFormatError, parse_secret

GOOD = {"username": "admin", "password": "p@ss-W0rd-xyz", "host": "db.local", "port": 3307, "dbname": "ordersdb"}


def test_rds_credentials_shape():
    settings = parse_secret(json.dumps(GOOD))
    assert (settings.host, settings.port, settings.username, settings.dbname) == ("db.local", 3307, "admin", "ordersdb")
    assert "p@ss" not in repr(settings)


def test_tutorial_db_alias_and_default_port():
    settings = parse_secret(json.dumps({"username": "a", "password": "b", "host": "h", "db": "ordersdb"}))
    assert settings.dbname == "ordersdb" and settings.port == 3306


@pytest.mark.parametrize("secret,expected", [
    ("not json p@ss-W0rd-xyz", "not JSON"),
    (json.dumps(["p@ss-W0rd-xyz"]), "JSON object"),
    (json.dumps({"username": "a", "password": "p@ss-W0rd-xyz"}), "lacks host, dbname"),
    (json.dumps({**GOOD, "port": "three"}), "port is not a number"),
])
def test_malformed_secrets_name_the_problem_without_the_secret(secret, expected):
    with pytest.raises(SecretFormatError) as caught:
        parse_secret(secret)
    assert expected in str(caught.value) and "p@ss-W0rd-xyz" not in str(caught.value)

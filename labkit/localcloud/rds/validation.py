"""What RDS refuses that moto lets through: the master password's rules, and a deletion without a final choice.

MySQL and MariaDB take a master password of 8-41 printable ASCII characters other than ``/``, ``"``, ``@`` and a
space (CreateDBInstance's documentation). DeleteDBInstance must either skip the final snapshot or name it
(``SkipFinalSnapshot`` is false unless given).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.core.validation import Adjust, Rule

PASSWORD_LENGTHS = {"mysql": (8, 41), "mariadb": (8, 41)}
FORBIDDEN = set('/@" ')


class InvalidParameterValue(AwsError):
    error_code = "InvalidParameterValue"


class InvalidParameterCombination(AwsError):
    error_code = "InvalidParameterCombination"


def check_master_password(password: str, engine: str) -> None:
    """Refuse ``password`` for ``engine`` as RDS does: its length first, then its characters."""
    low, high = PASSWORD_LENGTHS.get(engine.lower(), (8, 128))
    if len(password) < low:
        raise InvalidParameterValue("The parameter MasterUserPassword is not a valid password because it is shorter "
                                    f"than {low} characters.")
    if len(password) > high:
        raise InvalidParameterValue("The parameter MasterUserPassword is not a valid password because it is longer "
                                    f"than {high} characters.")
    if any(c in FORBIDDEN or not (" " <= c <= "~") for c in password):
        raise InvalidParameterValue("The parameter MasterUserPassword is not a valid password. Only printable ASCII "
                                    "characters besides '/', '@', '\"', ' ' may be used.")


def _password(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    given = given or {}
    password = given.get("MasterUserPassword")
    if isinstance(password, str):
        check_master_password(password, str(given.get("Engine") or _engine(given.get("DBInstanceIdentifier"))))


def _engine(identifier: Any) -> str:
    """The engine of an existing instance (ModifyDBInstance names none); mysql when it is not found."""
    from moto.rds.models import rds_backends

    for account in list(rds_backends.values()):
        for backend in list(dict.values(account)):
            db = backend.databases.get(identifier)
            if db is not None:
                return str(db.engine)
    return "mysql"


def _delete(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    given = given or {}
    skip, final = bool(given.get("SkipFinalSnapshot")), given.get("FinalDBSnapshotIdentifier")
    if not skip and not final:
        raise InvalidParameterCombination("FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is "
                                          "specified.")
    if skip and final:
        raise InvalidParameterCombination("Cannot specify both FinalDBSnapshotIdentifier and SkipFinalSnapshot.")


def rules() -> Iterable[Rule | Adjust]:
    return [Rule("rds", frozenset({"CreateDBInstance", "ModifyDBInstance"}), _password),
            Rule("rds", frozenset({"DeleteDBInstance"}), _delete)]

"""RDS's errors the local cloud raises itself (moto raises the rest)."""
from __future__ import annotations

from labkit.localcloud.core.errors import AwsError


class InvalidDBInstanceState(AwsError):
    """The instance is not in a state that allows the operation (RebootDBInstance on one not available)."""

    error_code = "InvalidDBInstanceState"

"""EC2's and SSM's errors the local cloud raises itself (moto raises the rest)."""
from __future__ import annotations

from labkit.localcloud.core.errors import AwsError

UNMANAGED = ("Instances not in a valid state for account or are not managed by SSM: attach an instance profile whose "
             "role has AmazonSSMManagedInstanceCore, and wait until the instance is running.")


class InvalidInstanceId(AwsError):
    """SSM: the instance is not managed (no SSM role, or not running)."""

    error_code = "InvalidInstanceId"


class InvalidParameterValue(AwsError):
    error_code = "InvalidParameterValue"


class MissingParameter(AwsError):
    error_code = "MissingParameter"


class NetworkAclEntryNotFound(AwsError):
    error_code = "InvalidNetworkAclEntry.NotFound"


class AssociationNotFound(AwsError):
    error_code = "InvalidAssociationID.NotFound"

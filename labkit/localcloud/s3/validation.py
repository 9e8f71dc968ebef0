"""What S3 refuses on CreateBucket that moto lets through: bucket names, and names other accounts own.

General purpose bucket naming rules (S3 User Guide): 3-63 characters of lowercase letters, digits, periods and
hyphens; beginning and ending with a letter or digit; no two adjacent periods; not shaped like an IP address; not
starting with ``xn--``, ``sthree-`` or ``amzn-s3-demo-``; not ending with ``-s3alias``, ``--ol-s3``, ``.mrap``,
``--x-s3`` or ``--table-s3``. Bucket names are shared by every account of the partition: a name someone else owns
is refused with ``BucketAlreadyExists``. The local cloud has one account, so "someone else" is the names that are
certainly taken on AWS (:data:`TAKEN`: short, common words every tutorial tries first). Your own bucket's name again
is moto's business (200 in us-east-1, ``BucketAlreadyOwnedByYou`` elsewhere, as on AWS).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.core.validation import Adjust, Rule

SHAPE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
TAKEN = frozenset({"test", "testing", "example", "data", "backup", "backups", "logs", "bucket", "my-bucket",
                   "mybucket", "images", "assets", "static", "media", "files", "uploads", "reports", "orders",
                   "website", "demo"})


class InvalidBucketName(AwsError):
    error_code = "InvalidBucketName"


class BucketAlreadyExists(AwsError):
    error_code = "BucketAlreadyExists"
    code = 409


def bucket_name_problem(name: str) -> bool:
    """Whether ``name`` breaks a general purpose bucket naming rule."""
    return (not SHAPE.fullmatch(name) or ".." in name or bool(IP_ADDRESS.fullmatch(name))
            or name.startswith(RESERVED_PREFIXES) or name.endswith(RESERVED_SUFFIXES))


def _create_bucket(_given: dict[str, Any] | None, call: ApiRequest) -> None:
    name = (call.classified.params.get("Bucket") if call.classified else None) or ""
    if bucket_name_problem(name):
        raise InvalidBucketName("The specified bucket is not valid.", details=(("BucketName", name),))
    if name in TAKEN:
        raise BucketAlreadyExists("The requested bucket name is not available. The bucket namespace is shared by "
                                  "all users of the system. Please select a different name and try again.",
                                  details=(("BucketName", name),))


def rules() -> Iterable[Rule | Adjust]:
    return [Rule("s3", frozenset({"CreateBucket"}), _create_bucket)]

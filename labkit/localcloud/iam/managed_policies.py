"""AWS managed policies, made when first named instead of wholesale: the memory of an idle lab.

With ``MOTO_IAM_LOAD_MANAGED_POLICIES`` (AWS's managed policies exist, as on AWS) moto builds all of them (about
1,600, 14 MiB) in every IAM backend it creates. Here an IAM backend makes an AWS managed policy when a request
names its ARN (GetPolicy, AttachRolePolicy, ...); a request that lists them (ListPolicies,
GetAccountAuthorizationDetails) makes them all first, so every answer is moto's own (:mod:`.patches`). A policy's
JSON is read from moto's data file when it is made: the module's 4.5 MiB string is not kept (:func:`_data_file`).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

POLICY_ARN_PREFIX = "arn:{partition}:iam::aws:policy"
MOTO_DATA = "moto.iam.aws_managed_policies"
QUOTES = '"""'
JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what the json module skips between tokens
_index_lock = threading.Lock()
_index: dict[str, tuple[int, int]] = {}


def _policy_offsets() -> dict[str, tuple[int, int]]:
    """Where each AWS managed policy's entry sits in moto's data (name -> (start, end), offsets in the file of
    :func:`_data_file`); built once, by one pass over the text that keeps nothing but the offsets."""
    with _index_lock:
        if _index:
            return _index
        text = _data_file().read_bytes().decode("ascii")  # (checked by _data_file: offsets are byte offsets)
        decoder = json.JSONDecoder()
        position = _skip_space(text, text.index("{", text.index(QUOTES) + len(QUOTES)) + 1)
        while text[position] != "}":
            name, position = decoder.raw_decode(text, position)
            position = _skip_space(text, _skip_space(text, position) + 1)  # past the colon
            _value, end = decoder.raw_decode(text, position)
            _index[name] = (position, end)
            position = _skip_space(text, end)
            if text[position] == ",":
                position = _skip_space(text, position + 1)
        return _index


@functools.cache
def _data_file() -> Path:
    """moto's ``moto/iam/aws_managed_policies.py``, read as a data file: its one string holds the policies as JSON,
    without an escape and in ASCII (so the text between its quotes is the string's value, and a character's offset
    its byte's). Imported, the module would keep that string, 4.5 MiB, for the daemon's life."""
    spec = importlib.util.find_spec(MOTO_DATA)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{MOTO_DATA} is missing: re-check labkit/localcloud/iam/managed_policies.py")
    path = Path(spec.origin)
    data = path.read_bytes()
    if data.count(QUOTES.encode()) != 2 or b"\\" in data or not data.isascii():
        raise RuntimeError(f"{path} is no longer one plain ASCII string: re-check labkit/localcloud/iam/"
                           "managed_policies.py")
    return path


def _skip_space(text: str, position: int) -> int:
    """The position of the first character at or after ``position`` that is not JSON whitespace."""
    found = JSON_WHITESPACE.match(text, position)
    return found.end() if found else position  # (it always matches: the pattern accepts nothing)


def _policy_data(name: str) -> dict[str, Any] | None:
    where = _policy_offsets().get(name)
    if where is None:
        return None
    with open(_data_file(), "rb") as data:
        data.seek(where[0])
        found: dict[str, Any] = json.loads(data.read(where[1] - where[0]))
        return found


def forget_moto_module() -> None:
    """Drop moto's module of the policies' text, whose string the daemon does not read (a later importer, such as
    moto's SSO Admin, imports it afresh); the name moto's IAM models import it under is patched (:mod:`.patches`)."""
    import moto.iam

    sys.modules.pop(MOTO_DATA, None)
    vars(moto.iam).pop("aws_managed_policies", None)


class ManagedPolicies(dict[str, Any]):
    """One IAM backend's ``managed_policies`` (ARN -> policy): the customer managed ones as moto keeps them, and
    each AWS managed one made, as moto makes it, when first named."""

    def __init__(self, backend: Any, with_aws: bool) -> None:
        super().__init__()
        self.backend, self.complete = backend, not with_aws  # without AWS's policies there is nothing to make
        self._lock = threading.Lock()

    def _make(self, arn: object) -> Any:
        """The AWS managed policy ``arn`` names, made and kept; None if it names none."""
        prefix = POLICY_ARN_PREFIX.format(partition=self.backend.partition)
        if self.complete or not isinstance(arn, str) or not arn.startswith(prefix + "/"):
            return None
        data = _policy_data(arn.rsplit("/", 1)[-1])
        if data is None:
            return None
        from moto.iam.models import AWSManagedPolicy

        policy = AWSManagedPolicy.from_data(arn.rsplit("/", 1)[-1], self.backend.account_id,
                                            self.backend.region_name, data)
        if policy.arn != arn:  # the right name under another path
            return None
        with self._lock:
            return self.setdefault(arn, policy)

    def __missing__(self, arn: str) -> Any:
        policy = self._make(arn)
        if policy is None:
            raise KeyError(arn)
        return policy

    def __contains__(self, arn: object) -> bool:
        return super().__contains__(arn) or self._make(arn) is not None

    def get(self, arn: str, default: Any = None) -> Any:
        try:
            return self[arn]
        except KeyError:
            return default

    def load_all(self) -> None:
        """Make every AWS managed policy, in moto's order (AWS's first, then the account's own)."""
        if self.complete:
            return
        from moto.iam.models import AWSManagedPolicy

        with self._lock:
            made: dict[str, Any] = {}
            for name in _policy_offsets():
                policy = AWSManagedPolicy.from_data(name, self.backend.account_id, self.backend.region_name,
                                                    _policy_data(name) or {})
                made[policy.arn] = dict.get(self, policy.arn, policy)
            made.update((arn, p) for arn, p in dict.items(self) if not isinstance(p, AWSManagedPolicy))
            self.clear()
            self.update(made)
            self.complete = True
        self.backend.aws_managed_policies = [p for p in self.values() if isinstance(p, AWSManagedPolicy)]

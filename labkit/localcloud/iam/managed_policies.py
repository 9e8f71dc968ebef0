"""AWS managed policies, made when first named instead of wholesale: the memory of an idle lab.

With ``MOTO_IAM_LOAD_MANAGED_POLICIES`` (AWS's managed policies exist, as on AWS) moto builds all of them (about
1,600, 14 MiB) in every IAM backend it creates. Here an IAM backend makes an AWS managed policy when a request
names its ARN (GetPolicy, AttachRolePolicy, ...); a request that lists them (ListPolicies,
GetAccountAuthorizationDetails) makes them all first, so every answer is moto's own (:mod:`.patches`).
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any

POLICY_ARN_PREFIX = "arn:{partition}:iam::aws:policy"
JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what the json module skips between tokens
_index_lock = threading.Lock()
_index: dict[str, tuple[int, int]] = {}


def _policy_offsets() -> dict[str, tuple[int, int]]:
    """Where each AWS managed policy's entry sits in moto's data (name -> (start, end)); built once, by one pass
    over the text that keeps nothing but the offsets."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data as text

    with _index_lock:
        if _index:
            return _index
        decoder = json.JSONDecoder()
        position = _skip_space(text, text.index("{") + 1)
        while text[position] != "}":
            name, position = decoder.raw_decode(text, position)
            position = _skip_space(text, _skip_space(text, position) + 1)  # past the colon
            _value, end = decoder.raw_decode(text, position)
            _index[name] = (position, end)
            position = _skip_space(text, end)
            if text[position] == ",":
                position = _skip_space(text, position + 1)
        return _index


def _skip_space(text: str, position: int) -> int:
    """The position of the first character at or after ``position`` that is not JSON whitespace."""
    found = JSON_WHITESPACE.match(text, position)
    return found.end() if found else position  # (it always matches: the pattern accepts nothing)


def _policy_data(name: str) -> dict[str, Any] | None:
    from moto.iam.aws_managed_policies import aws_managed_policies_data as text

    where = _policy_offsets().get(name)
    return json.loads(text[where[0]:where[1]]) if where else None


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

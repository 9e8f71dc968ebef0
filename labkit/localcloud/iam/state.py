"""What the lab's state needs to know of moto's IAM (issue 23; composed by :mod:`labkit.localcloud.server`).

A backend's managed policies (:class:`~labkit.localcloud.iam.managed_policies.ManagedPolicies`) hold a lock, and,
once anything listed them, every AWS managed policy (about 1,600, 14 MiB): the customer managed policies and the
AWS ones in use are kept; the others are made again when first named, as in a new daemon.
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule
from labkit.localcloud.iam.managed_policies import ManagedPolicies


def _unused_aws_policy(policy: Any) -> bool:
    from moto.iam.models import AWSManagedPolicy

    return isinstance(policy, AWSManagedPolicy) and not policy.attachment_count


def _policies(backend: Any, kept: dict[str, Any], complete: bool) -> ManagedPolicies:
    policies = ManagedPolicies(backend, True)
    policies.complete = complete
    dict.update(policies, kept)
    return policies


def _reduce_policies(policies: ManagedPolicies, _pickler: StatePickler) -> Any:
    kept = {arn: p for arn, p in dict.items(policies) if not _unused_aws_policy(p)}
    return _policies, (policies.backend, kept, policies.complete and len(kept) == dict.__len__(policies))


def _trim_backend(_backend: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    listed = attributes.get("aws_managed_policies")
    if listed:  # every AWS managed policy once listed: the ones in use are kept
        attributes["aws_managed_policies"] = [p for p in listed if not _unused_aws_policy(p)]
    return attributes


def rules() -> list[StateRule]:
    from moto.iam.models import IAMBackend

    return [
        StateRule(ManagedPolicies, "a lock, and every AWS managed policy once listed (14 MiB): the customer ones and "
                  "the AWS ones in use are kept, the rest made again when named", reduce=_reduce_policies),
        StateRule(IAMBackend, "the AWS managed policies it listed: the ones in use are kept", trim=_trim_backend),
    ]

"""What the lab's state needs to know of moto's IAM (issue 23; composed by :mod:`labkit.localcloud.server`).

STS's role sessions hold the temporary access keys IAM keeps, EC2's instance profile associations hold IAM's
instance profiles: saved in the other service's file as references to IAM's (the key with the same id, the profile
with the same id), so that after a load both services hold the one object. A backend's managed policies (:class:`~labkit.localcloud.iam.managed_policies.ManagedPolicies`) hold a lock, and,
once anything listed them, every AWS managed policy (about 1,600, 14 MiB): the customer managed policies and the
AWS ones in use are kept; the others are made again when first named, as in a new daemon.
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.pickling import BackendKey, StatePickler, StateRule, load_backend
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


def _access_key(key: BackendKey, access_key_id: str, record: dict[str, Any]) -> Any:
    iam: Any = load_backend(*key)
    found = next((k for k in list(iam.access_keys.values()) if k.access_key_id == access_key_id), None)
    if found is not None:
        return found
    from moto.iam.models import AccessKey  # gone from IAM since: the record as it was

    kept = AccessKey.__new__(AccessKey)
    vars(kept).update(record, last_used=None)
    return kept


def _reduce_access_key(access_key: Any, pickler: StatePickler) -> Any:
    from moto.iam.models import IAMBackend

    if isinstance(pickler.root, IAMBackend):
        return NotImplemented  # IAM's own file holds its keys
    key = pickler.refer(("iam", pickler.root.account_id, "aws"))  # moto keeps a session's key in its account's IAM
    record = {k: v for k, v in vars(access_key).items() if k != "last_used"}
    return _access_key, (key, access_key.access_key_id, record)


def _instance_profile(key: BackendKey, profile_id: str, record: dict[str, Any]) -> Any:
    iam: Any = load_backend(*key)
    found = next((p for p in list(iam.instance_profiles.values()) if p.id == profile_id), None)
    if found is not None:
        return found
    from moto.iam.models import InstanceProfile  # deleted since: the record as it was, without its roles

    kept = InstanceProfile.__new__(InstanceProfile)
    vars(kept).update(record, roles=[])
    return kept


def _reduce_instance_profile(profile: Any, pickler: StatePickler) -> Any:
    from moto.iam.models import IAMBackend

    if isinstance(pickler.root, IAMBackend):
        return NotImplemented
    key = pickler.refer(("iam", profile.account_id, "aws"))
    return _instance_profile, (key, profile.id, {k: v for k, v in vars(profile).items() if k != "roles"})


def _trim_backend(_backend: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    listed = attributes.get("aws_managed_policies")
    if listed:  # every AWS managed policy once listed: the ones in use are kept
        attributes["aws_managed_policies"] = [p for p in listed if not _unused_aws_policy(p)]
    return attributes


def rules() -> list[StateRule]:
    from moto.iam.models import AccessKey, IAMBackend, InstanceProfile

    return [
        StateRule(InstanceProfile, "an instance's profile (EC2) is the profile IAM keeps, not a copy of it",
                  reduce=_reduce_instance_profile),
        StateRule(AccessKey, "a role session's key (STS) is the key IAM keeps, not a copy of it",
                  reduce=_reduce_access_key),
        StateRule(ManagedPolicies, "a lock, and every AWS managed policy once listed (14 MiB): the customer ones and "
                  "the AWS ones in use are kept, the rest made again when named", reduce=_reduce_policies),
        StateRule(IAMBackend, "the AWS managed policies it listed: the ones in use are kept", trim=_trim_backend),
    ]

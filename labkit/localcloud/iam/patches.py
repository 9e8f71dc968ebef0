"""The local cloud's changes to moto's IAM (listed, checked and applied by :mod:`labkit.localcloud.core.patches`).

* **AWS managed policies** are made when first named (:mod:`.managed_policies`), not 1,600 of them per backend.
* **Partitions nobody uses.** moto finds the account of an access key by asking the IAM backend of every
  partition (aws, aws-cn, aws-us-gov, ...), which creates the five a lab never uses, each with its managed
  policies (70 MiB). A backend that was never created holds no access keys: only the existing ones are asked.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.localcloud.core.patches import Patch
from labkit.localcloud.iam.managed_policies import ManagedPolicies, forget_moto_module


def patches() -> list[Patch]:
    """The IAM patches."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam import models as iam
    from moto.settings import load_iam_aws_managed_policies

    def no_aws_policies(_original: Any) -> Callable[[Any], list[Any]]:
        return lambda self: []

    def on_demand(_original: Any) -> Callable[[Any], ManagedPolicies]:
        return lambda self: ManagedPolicies(self, load_iam_aws_managed_policies())

    def names_policy_first(original: Any) -> Any:
        def wrapper(self: Any, policy_arn: str, *args: Any, **kwargs: Any) -> Any:
            self.managed_policies.get(policy_arn)  # moto looks it up among the policies it lists
            return original(self, policy_arn, *args, **kwargs)
        return wrapper

    def lists_all(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.managed_policies.load_all()
            return original(self, *args, **kwargs)
        return wrapper

    def without_text(_original: Any) -> str:
        forget_moto_module()
        return ""

    def existing_partitions(_original: Any) -> Callable[[str], str]:
        def get_account_id_from(access_key: str) -> str:
            for account_id, account in list(iam.iam_backends.items()):
                for backend in list(dict.values(account)):
                    if access_key in backend.access_keys:
                        return account_id
            return DEFAULT_ACCOUNT_ID
        return get_account_id_from

    backend = iam.IAMBackend
    attach = "an AWS managed policy is made when first named (moto finds it among the policies it lists)"
    return [
        Patch(backend, "_init_aws_policies", "moto builds every AWS managed policy (about 1,600, 14 MiB) in every "
              "IAM backend; they are made when first named (ManagedPolicies)", no_aws_policies),
        Patch(iam, "aws_managed_policies_data", "moto's IAM models keep the AWS managed policies' text (4.5 MiB) for "
              "_init_aws_policies alone, replaced above; ManagedPolicies reads a policy from moto's file when named",
              without_text),
        Patch(backend, "_init_managed_policies", "a backend's managed policies: the AWS ones made when first named",
              on_demand),
        *(Patch(backend, method, attach, names_policy_first) for method in (
            "attach_role_policy", "detach_role_policy", "attach_group_policy", "detach_group_policy",
            "attach_user_policy", "detach_user_policy")),
        Patch(backend, "list_policies", "ListPolicies lists every AWS managed policy, as moto does",
              lists_all),
        Patch(backend, "get_account_authorization_details", "so does GetAccountAuthorizationDetails", lists_all),
        Patch(iam, "get_account_id_from", "moto asks the IAM backend of every partition, creating the five a lab "
              "never uses (70 MiB); a backend never created holds no access keys", existing_partitions),
    ]

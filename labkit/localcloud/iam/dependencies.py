"""What IAM refuses to delete while something depends on it: a managed policy attached to a user, group or role,
or with versions other than its default (DeleteRole and DeleteInstanceProfile moto refuses already)."""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.patches import Patch


class DeleteConflict(AwsError):
    error_code = "DeleteConflict"
    code = 409


def _delete_policy(original: Any) -> Any:
    def wrapper(self: Any, policy_arn: str) -> Any:
        policy = self.get_policy(policy_arn)  # moto answers NoSuchEntity for an unknown one
        if policy.attachment_count:
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(policy.versions) > 1:
            raise DeleteConflict("This policy has more than one version. Before you delete a policy, you must delete "
                                 "the policy's versions. The default version is deleted with the policy.")
        return original(self, policy_arn)
    return wrapper


def patches() -> list[Patch]:
    from moto.iam import models as iam

    return [Patch(iam.IAMBackend, "delete_policy", "an attached policy, or one with other versions, is refused "
                  "(DeleteConflict)", _delete_policy)]

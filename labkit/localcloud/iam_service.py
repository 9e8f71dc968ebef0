"""IAM as a service of the local cloud: the request hook, the admin user, and Lambda's role checks.

``install(cloud)`` creates the admin user, returns the :class:`~labkit.localcloud.iam_auth.Authorizer`
the daemon runs before moto sees a request, and makes Lambda check an execution role as AWS does on
CreateFunction and UpdateFunctionConfiguration: the trust policy must let ``lambda.amazonaws.com`` assume
it, and a function in a VPC needs a role that may manage its network interfaces.

``LABKIT_IAM=off`` in the daemon's environment still identifies callers but authorizes nothing; it exists
so ``bench/`` can measure what enforcement costs.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import InvalidParameterValueException

from labkit.localcloud import iam_auth

if TYPE_CHECKING:
    from labkit.localcloud.server import LocalCloud

# What Lambda checks on the execution role of a function in a VPC, in the order it reports them.
VPC_ACTIONS = ("CreateNetworkInterface", "DescribeNetworkInterfaces", "DeleteNetworkInterface")
NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."


def check_execution_role(role_arn: str, vpc_config: dict | None) -> None:
    """Raise Lambda's InvalidParameterValueException when the role cannot serve the function."""
    try:
        role = iam_auth._iam().get_role_by_arn(role_arn)
    except Exception:
        raise InvalidParameterValueException(NOT_ASSUMABLE) from None
    if not iam_auth.trust_allows(role, service="lambda.amazonaws.com"):
        raise InvalidParameterValueException(NOT_ASSUMABLE)
    if vpc_config and vpc_config.get("SubnetIds"):
        for action in VPC_ACTIONS:
            if not iam_auth.role_may(role, f"ec2:{action}"):
                raise InvalidParameterValueException(
                    f"The provided execution role does not have permissions to call {action} on EC2")


def _patch_lambda() -> None:
    backend = lambda_models.LambdaBackend
    if getattr(backend, "_labkit_role_checks", False):
        return
    original_create, original_update = backend.create_function, backend.update_function_configuration

    def create_function(self: Any, spec: dict[str, Any]) -> Any:
        if spec.get("Role"):
            check_execution_role(spec["Role"], spec.get("VpcConfig"))
        return original_create(self, spec)

    def update_function_configuration(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        if "Role" in body or "VpcConfig" in body:
            fn = self.get_function(function_name, qualifier)
            vpc = body.get("VpcConfig", {"SubnetIds": fn._vpc_config.get("SubnetIds")} if fn._vpc_config else None)
            check_execution_role(body.get("Role") or fn.role, vpc)
        return original_update(self, function_name, qualifier, body)

    backend.create_function = create_function
    backend.update_function_configuration = update_function_configuration
    backend._labkit_role_checks = True


def install(cloud: LocalCloud) -> iam_auth.Authorizer:
    authorizer = iam_auth.Authorizer(enforce=os.environ.get("LABKIT_IAM", "on") != "off")
    authorizer.install_admin(cloud.home)
    _patch_lambda()
    return authorizer

"""What Lambda checks of an execution role on CreateFunction and UpdateFunctionConfiguration, as AWS does.

The trust policy must let ``lambda.amazonaws.com`` assume the role, and a function in a VPC needs a role that
may manage its network interfaces (:mod:`.patches` calls :func:`check_execution_role`). Lambda reads IAM's data
plane: in realistic mode a role or policy made seconds ago is not there yet (:mod:`..iam.propagation`).
"""
from __future__ import annotations

from typing import Any

from moto.iam.exceptions import NotFoundException

from labkit.localcloud.awslambda.exceptions import InvalidParameterValue
from labkit.localcloud.iam.principals import data_plane_role, role_may, trust_allows

# What Lambda checks on the execution role of a function in a VPC, in the order it reports them.
VPC_ACTIONS = ("CreateNetworkInterface", "DescribeNetworkInterfaces", "DeleteNetworkInterface")
NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."


def check_execution_role(role_arn: str, vpc_config: dict[str, Any] | None) -> None:
    """Raise Lambda's InvalidParameterValueException when the role cannot serve the function."""
    try:
        role = data_plane_role(role_arn)  # as Lambda sees it: a new role or policy reaches it seconds later on AWS
    except NotFoundException:
        raise InvalidParameterValue(NOT_ASSUMABLE) from None
    if not trust_allows(role, service="lambda.amazonaws.com"):
        raise InvalidParameterValue(NOT_ASSUMABLE)
    if vpc_config and vpc_config.get("SubnetIds"):
        for action in VPC_ACTIONS:
            if not role_may(role, f"ec2:{action}"):
                raise InvalidParameterValue(
                    f"The provided execution role does not have permissions to call {action} on EC2")

"""IAM as a service of the local cloud: the request hook, the admin user, and Lambda's role checks.

:class:`IamService` creates the admin user (again after every reset), runs the
:class:`~labkit.localcloud.iam_auth.Authorizer` as its request hook (before moto sees a request; the
caller's ARN becomes the request's ``principal`` annotation), and -- through :mod:`moto_patches_lambda` --
makes Lambda check an execution role as AWS does on CreateFunction and UpdateFunctionConfiguration
(:func:`check_execution_role`): the trust policy must let ``lambda.amazonaws.com`` assume it, and a
function in a VPC needs a role that may manage its network interfaces.

``LABKIT_IAM=off`` in the daemon's environment still identifies callers but authorizes nothing; it exists
so ``bench/`` can measure what enforcement costs.
"""
from __future__ import annotations

import os
from moto.awslambda.exceptions import InvalidParameterValueException
from moto.iam.exceptions import NotFoundException
from werkzeug.wrappers import Response

from labkit.localcloud import iam_auth
from labkit.localcloud.services import ApiRequest, CloudContext, Service

# What Lambda checks on the execution role of a function in a VPC, in the order it reports them.
VPC_ACTIONS = ("CreateNetworkInterface", "DescribeNetworkInterfaces", "DeleteNetworkInterface")
NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."


def check_execution_role(role_arn: str, vpc_config: dict | None) -> None:
    """Raise Lambda's InvalidParameterValueException when the role cannot serve the function."""
    try:
        role = iam_auth._iam().get_role_by_arn(role_arn)
    except NotFoundException:
        raise InvalidParameterValueException(NOT_ASSUMABLE) from None
    if not iam_auth.trust_allows(role, service="lambda.amazonaws.com"):
        raise InvalidParameterValueException(NOT_ASSUMABLE)
    if vpc_config and vpc_config.get("SubnetIds"):
        for action in VPC_ACTIONS:
            if not iam_auth.role_may(role, f"ec2:{action}"):
                raise InvalidParameterValueException(
                    f"The provided execution role does not have permissions to call {action} on EC2")


class IamService(Service):
    """Every AWS API request is signed by a principal and authorized against its policies."""

    name = "iam"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.authorizer = iam_auth.Authorizer(enforce=os.environ.get("LABKIT_IAM", "on") != "off")

    def start(self) -> None:
        self.authorizer.install_admin(self.ctx.home)

    def after_reset(self) -> None:
        self.authorizer.install_admin(self.ctx.home)  # the same keys: they are kept in LABKIT_HOME/credentials

    def summary(self) -> dict:
        return {"enforcing": self.authorizer.enforce}

    def on_request(self, call: ApiRequest) -> Response | None:
        refusal = self.authorizer(call)
        if refusal is None:
            call.annotations["principal"] = call.request.environ.get("labkit.principal")
        return refusal

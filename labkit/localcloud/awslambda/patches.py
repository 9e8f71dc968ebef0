"""The local cloud's changes to moto's Lambda: Invoke runs the real code, the role checks AWS makes (listed,
checked and applied by :mod:`labkit.localcloud.core.patches`).
"""
from __future__ import annotations

import json
from typing import Any

from labkit.localcloud.awslambda.exceptions import ResourceConflict
from labkit.localcloud.core.patches import Patch, find


def _lambda_vpc_config(fn: Any) -> dict[str, Any] | None:
    from moto.ec2.models import ec2_backends

    if not fn._vpc_config:
        return None
    config = {**fn._vpc_config}
    subnets = config.get("SubnetIds") or []
    config.pop("VpcId", None)
    if subnets:
        try:
            config["VpcId"] = ec2_backends[fn.account_id][fn.region].get_subnet(subnets[0]).vpc_id
        except Exception:
            pass
    return config


def patches() -> list[Patch]:
    """The Lambda patches."""
    from moto.awslambda import models as awslambda
    from moto.awslambda import policy

    from labkit.localcloud.awslambda.roles import check_execution_role
    from labkit.localcloud.awslambda.service import LambdaService
    from labkit.localcloud.iam.service import IamService

    def invoke(original: Any) -> Any:
        def wrapper(self: Any, body: str, request_headers: Any, response_headers: dict[str, Any]) -> bytes:
            service = find(LambdaService)
            if service is None:
                answer: bytes = original(self, body, request_headers, response_headers)
                return answer
            payload = body.encode() if isinstance(body, str) else (body or b"")
            payload, headers = service.invoke(
                self, payload or b"{}", request_headers.get("x-amz-invocation-type") or "RequestResponse",
                tail=request_headers.get("x-amz-log-type") == "Tail",
                client_context=request_headers.get("x-amz-client-context"))
            response_headers.update(headers)
            return payload
        return wrapper

    def new_revision(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._labkit_revision = None
            return original(self, *args, **kwargs)
        return wrapper

    def delete_function(original: Any) -> Any:
        def wrapper(self: Any, function_name: str, qualifier: str | None = None) -> None:
            arns = [fn.function_arn for fn in self.list_functions()
                    if function_name in (fn.function_name, fn.function_arn)]
            original(self, function_name, qualifier)
            service = find(LambdaService)
            if service is not None:
                for arn in arns:
                    service.retire(arn)
        return wrapper

    def checks_role_on_create(original: Any) -> Any:
        def wrapper(self: Any, spec: dict[str, Any]) -> Any:
            if find(IamService) is not None and spec.get("Role"):
                check_execution_role(spec["Role"], spec.get("VpcConfig"))
            return original(self, spec)
        return wrapper

    def checks_role_on_update(original: Any) -> Any:
        def wrapper(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
            if find(IamService) is not None and ("Role" in body or "VpcConfig" in body):
                fn = self.get_function(function_name, qualifier)
                vpc = body.get("VpcConfig", {"SubnetIds": fn._vpc_config.get("SubnetIds")} if fn._vpc_config else None)
                check_execution_role(body.get("Role") or fn.role, vpc)
            return original(self, function_name, qualifier, body)
        return wrapper

    def code_location(original: Any) -> Any:
        def wrapper(self: Any) -> Any:
            answer = original(self)
            service = find(LambdaService)
            if service is not None and getattr(self, "code_bytes", None):
                answer["Code"] = {"Location": service.downloads.location(self), "RepositoryType": "S3"}
            return answer
        return wrapper

    def unique_statement_id(original: Any) -> Any:
        def wrapper(self: Any, raw: str, qualifier: str | None = None) -> Any:
            sid = (json.loads(raw) if raw else {}).get("StatementId")
            if sid and any(statement.get("Sid") == sid for statement in self.statements):
                raise ResourceConflict(f"The statement id ({sid}) provided already exists. Please provide a new "
                                       "statement id, or remove the existing statement.")
            return original(self, raw, qualifier)
        return wrapper

    fn = awslambda.LambdaFunction
    return [
        Patch(policy.Policy, "add_statement", "AddPermission with a StatementId the policy already holds is "
              "refused with ResourceConflictException (moto 5.2.5 appends a second statement)",
              unique_statement_id),
        Patch(fn, "get_code", "GetFunction's Code.Location is a presigned URL (10 minutes) that downloads the zip "
              "(moto 5.2.5: an unsigned URL on a host that does not resolve)", code_location),
        Patch(fn, "invoke", "Invoke runs the real code in an awslambdaric worker (moto would need docker)", invoke),
        Patch(fn, "update_configuration", "a new configuration means new workers (a cold start)", new_revision),
        Patch(fn, "update_function_code", "new code means new workers (a cold start)", new_revision),
        Patch(awslambda.LambdaBackend, "delete_function", "DeleteFunction ends the function's workers",
              delete_function),
        Patch(awslambda.LambdaBackend, "create_function", "CreateFunction refuses a role Lambda cannot assume "
              "or, in a VPC, one without the ENI permissions (awslambda.roles.check_execution_role)",
              checks_role_on_create),
        Patch(awslambda.LambdaBackend, "update_function_configuration", "the same role checks when the role or "
              "the VPC changes", checks_role_on_update),
        Patch(fn, "vpc_config", "VpcConfig names its subnets' real VpcId (moto 5.2.5 answers \"vpc-123abc\")",
              lambda _original: property(_lambda_vpc_config)),
    ]

"""The resource an AWS API request is authorized on, in IAM's terms (an ARN).

AWS authorizes each action on a resource; this module finds the ARN for the operations the lab uses, from the
request's classified parameters (:mod:`labkit.localcloud.core.requests`). Other operations are authorized on
``*``, which only a policy allowing every resource grants. The policy check always uses the ARN; an AccessDenied
message names the resource as AWS shows it (:func:`resource_shown`), which for some services is what the caller
passed.
"""
from __future__ import annotations

from labkit.localcloud.core.requests import Classified


def resource_arn(request: Classified, region: str, account: str) -> str:
    """The ARN IAM authorizes this request on (``*`` when the action has no resource in the lab's model)."""
    finder = RESOURCES.get(request.service)
    arn = finder(request, region, account) if finder else None
    return arn or "*"


def resource_shown(request: Classified, arn: str) -> str:
    """The resource as AWS names it in an AccessDenied message about ``request`` on ``arn``: Secrets Manager
    names the ``SecretId`` exactly as the caller sent it (a name, a partial ARN or a full ARN: "... on resource:
    order-db-secret because no identity-based policy allows ..."); every other service the lab uses, the ARN."""
    if request.service == "secretsmanager":
        secret_id = request.params.get("SecretId")
        if isinstance(secret_id, str) and secret_id:
            return secret_id
    return arn


def _lambda(request: Classified, region: str, account: str) -> str | None:
    p = request.params
    if "LayerName" in p:
        layer = p["LayerName"] if p["LayerName"].startswith("arn:") else \
            f"arn:aws:lambda:{region}:{account}:layer:{p['LayerName']}"
        return f"{layer}:{p['VersionNumber']}" if "VersionNumber" in p else layer
    name: str | None = p.get("FunctionName")
    if not name:
        return None
    if name.startswith("arn:"):
        return name
    if ":" in name:  # account:function:name or name:qualifier
        name = name.rsplit("function:", 1)[-1]
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def _secretsmanager(request: Classified, region: str, account: str) -> str | None:
    secret_id = request.params.get("SecretId") or request.params.get("Name")
    if not secret_id:
        return None
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    if secret is not None:
        return secret.arn
    return secret_id if secret_id.startswith("arn:") else f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _s3(request: Classified, region: str, account: str) -> str | None:
    bucket, key = request.params.get("Bucket"), request.params.get("Key")
    if not bucket:
        return None
    return f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"


def _logs(request: Classified, region: str, account: str) -> str | None:
    group = request.params.get("logGroupName")
    if group is None:
        return None
    return f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{request.params.get('logStreamName', '')}"


def _events(request: Classified, region: str, account: str) -> str | None:
    name = request.params.get("Rule") or (request.params.get("Name") if "Rule" in request.operation else None)
    if not name:
        return None
    return name if name.startswith("arn:") else f"arn:aws:events:{region}:{account}:rule/{name}"


def _iam(request: Classified, region: str, account: str) -> str | None:
    p = request.params
    if request.operation in ("PassRole",):
        role_arn: str | None = p.get("RoleArn")
        return role_arn
    if "PolicyArn" in p and "RoleName" not in p and "UserName" not in p:
        policy_arn: str = p["PolicyArn"]
        return policy_arn
    for key, kind in (("RoleName", "role"), ("UserName", "user"), ("InstanceProfileName", "instance-profile"),
                      ("GroupName", "group")):
        if key in p:
            return f"arn:aws:iam::{account}:{kind}/{p[key]}"
    return None


def _sts(request: Classified, region: str, account: str) -> str | None:
    return request.params.get("RoleArn")


def _ssm(request: Classified, region: str, account: str) -> str | None:
    name = request.params.get("Name")
    if name and "Parameter" in request.operation:
        return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
    return None


def _rds(request: Classified, region: str, account: str) -> str | None:
    if "DBInstanceIdentifier" in request.params:
        return f"arn:aws:rds:{region}:{account}:db:{request.params['DBInstanceIdentifier']}"
    return None


RESOURCES = {"lambda": _lambda, "secretsmanager": _secretsmanager, "s3": _s3, "logs": _logs, "events": _events,
             "iam": _iam, "sts": _sts, "ssm": _ssm, "rds": _rds}

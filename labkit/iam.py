"""IAM roles, their policies, and the EC2 instance profile.

By default each role gets the tutorial's AWS managed policies (that is the lesson); ``roles_frame`` shows
beside them what each role really needs. With ``policies="least-privilege"`` it gets one inline policy
naming only those actions on the lab's own ARNs instead. The mode is the lab's, not a call's: it is
stored as the tag ``lab-policies`` on the lab's VPC, and a Lab built without ``policies`` uses it.
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from labkit.errors import if_exists
from labkit.iam_policy import allowed_by
from labkit.names import (
    EC2_ROLE,
    REPORT_FUNCTION,
    REPORT_ROLE,
    SECRET_NAME,
    VALIDATOR_FUNCTION,
    VALIDATOR_ROLE,
    bucket_name,
    lab_resource,
    log_group,
)
from labkit.session import Lab
from labkit.tagging import claim, ec2_find

__all__ = ["EC2_ROLE", "MANAGED", "REPORT_FUNCTION", "REPORT_ROLE", "SECRET_NAME", "VALIDATOR_FUNCTION",
           "VALIDATOR_ROLE", "access_frame", "ensure_instance_profile", "ensure_role", "least_privilege_policy",
           "needed_actions", "policy_mode", "role_allows", "role_documents", "role_policies", "roles_frame", "trust_frame"]
AWS_POLICY = "arn:aws:iam::aws:policy/"
MANAGED = {
    # AmazonSSMManagedInstanceCore is what lets SSM Run Command reach the instance (no SSH needed).
    EC2_ROLE: ["SecretsManagerReadWrite", "AWSLambda_FullAccess", "AmazonS3FullAccess",
               "AmazonSSMManagedInstanceCore"],
    VALIDATOR_ROLE: ["SecretsManagerReadWrite", "service-role/AWSLambdaBasicExecutionRole",
                     "service-role/AWSLambdaVPCAccessExecutionRole"],
    REPORT_ROLE: ["AmazonS3FullAccess", "SecretsManagerReadWrite", "service-role/AWSLambdaVPCAccessExecutionRole"],
}
ROLE_STEP = {EC2_ROLE: 5, VALIDATOR_ROLE: 10, REPORT_ROLE: 12}
SERVICE = {EC2_ROLE: "ec2.amazonaws.com", VALIDATOR_ROLE: "lambda.amazonaws.com", REPORT_ROLE: "lambda.amazonaws.com"}
# What AWSLambdaVPCAccessExecutionRole (v3) grants besides the logs actions.
VPC_ENI_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                   "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
POLICY_TAG = "lab-policies"


def policy_mode(lab: Lab) -> str:
    """The lab's policy mode: the one it was given (stored on the lab's VPC), else the stored one, else managed."""
    vpc = ec2_find(lab, "Vpcs", lab_resource(lab, "vpc"))
    stored = next((t["Value"] for t in (vpc or {}).get("Tags", []) if t["Key"] == POLICY_TAG), None)
    wanted = lab.config.policies
    if wanted and vpc and wanted != stored:
        lab.client("ec2").create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": POLICY_TAG, "Value": wanted}])
    return wanted or stored or "managed"


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def least_privilege_policy(lab: Lab, role: str) -> dict[str, Any]:
    """The inline policy of ``role`` in least-privilege mode: named actions on the lab's own ARNs."""
    arn = f"arn:aws:{{}}:{lab.region}:{lab.account_id}:"
    secret = arn.format("secretsmanager") + f"secret:{SECRET_NAME}-*"

    def logs(fn: str) -> str:
        return arn.format("logs") + f"log-group:{log_group(fn)}:*"

    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                                         "Resource": secret}]
    if role == EC2_ROLE:
        statements.append({"Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                           "Resource": arn.format("lambda") + f"function:{VALIDATOR_FUNCTION}"})
    else:
        fn = VALIDATOR_FUNCTION if role == VALIDATOR_ROLE else REPORT_FUNCTION
        statements += [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                       "logs:PutLogEvents"], "Resource": logs(fn)},
                       {"Effect": "Allow", "Action": VPC_ENI_ACTIONS, "Resource": "*"}]
    if role == REPORT_ROLE:
        statements.append({"Effect": "Allow", "Action": ["s3:PutObject"],
                           "Resource": f"arn:aws:s3:::{bucket_name(lab)}/*"})
    return {"Version": "2012-10-17", "Statement": statements}


def ensure_role(lab: Lab, role: str) -> str:
    """Create ``role`` if missing and give it the policies of the lab's mode; return its ARN."""
    iam = lab.client("iam")
    if claim(lab, ROLE_STEP[role], "role", role):
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    else:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=_trust(SERVICE[role]), Tags=lab.tags,
                              Description=f"Orders Lab ({lab.name})")["Role"]["Arn"]
        iam.get_waiter("role_exists").wait(RoleName=role)
    mode = policy_mode(lab)
    wanted = set(MANAGED[role]) if mode == "managed" else (
        {"AmazonSSMManagedInstanceCore"} if role == EC2_ROLE else set())
    attached = {p["PolicyArn"].removeprefix(AWS_POLICY)
                for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]}
    for policy in wanted - attached:
        iam.attach_role_policy(RoleName=role, PolicyArn=AWS_POLICY + policy)
    for policy in attached - wanted:
        iam.detach_role_policy(RoleName=role, PolicyArn=AWS_POLICY + policy)
    if mode == "least-privilege":
        iam.put_role_policy(RoleName=role, PolicyName="orders-lab-least-privilege",
                            PolicyDocument=json.dumps(least_privilege_policy(lab, role)))
    else:
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
    return arn


def ensure_instance_profile(lab: Lab) -> str:
    """The instance profile that carries the EC2 role to the instance; returns its ARN."""
    iam = lab.client("iam")
    ensure_role(lab, EC2_ROLE)
    if claim(lab, 5, "instance profile", EC2_ROLE):
        profile = iam.get_instance_profile(InstanceProfileName=EC2_ROLE)["InstanceProfile"]
    else:
        profile = iam.create_instance_profile(InstanceProfileName=EC2_ROLE, Tags=lab.tags)["InstanceProfile"]
        iam.get_waiter("instance_profile_exists").wait(InstanceProfileName=EC2_ROLE)
    if not any(r["RoleName"] == EC2_ROLE for r in profile.get("Roles", [])):
        iam.add_role_to_instance_profile(InstanceProfileName=EC2_ROLE, RoleName=EC2_ROLE)
    return profile["Arn"]


def needed_actions(lab: Lab, role: str) -> list[str]:
    """The actions ``role`` really needs (its least-privilege policy), e.g. to compare with the managed ones."""
    actions = {a for s in least_privilege_policy(lab, role)["Statement"] for a in s["Action"]}
    if role == EC2_ROLE:
        actions.add("(AmazonSSMManagedInstanceCore, for Run Command)")
    return sorted(actions)


def roles_frame(lab: Lab) -> pd.DataFrame:
    """Each lab role, who may assume it, its policies, and beside them the actions it really needs."""
    iam = lab.client("iam")
    rows = []
    for role in MANAGED:
        if if_exists(lambda: iam.get_role(RoleName=role), f"reading the role {role}") is None:
            continue
        managed = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
        inline = iam.list_role_policies(RoleName=role)["PolicyNames"]
        rows.append({"role": role, "assumed by": SERVICE[role], "managed policies": ", ".join(sorted(managed)),
                     "inline policies": ", ".join(inline), "really needs": ", ".join(needed_actions(lab, role))})
    return pd.DataFrame(rows, columns=["role", "assumed by", "managed policies", "inline policies", "really needs"])


def _statements(document: Any) -> list[dict[str, Any]]:
    data = json.loads(document) if isinstance(document, str) else document
    statements = data.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value] if value is not None else [])]


def role_policies(lab: Lab, role: str) -> list[tuple[str, str, Any]]:
    """(policy name, kind, document) of every policy of ``role``: attached managed ones, then inline ones."""
    iam = lab.client("iam")
    found = []
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        kind = "AWS managed" if attached["PolicyArn"].startswith(AWS_POLICY) else "customer managed"
        found.append((attached["PolicyName"], kind, version["PolicyVersion"]["Document"]))
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        found.append((name, "inline", iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
    return found


ACCESS_COLUMNS = ["role", "policy", "kind", "effect", "actions", "resources"]


def access_frame(lab: Lab, roles: list[str] | None = None) -> pd.DataFrame:
    """For each role of the lab, what it may do on which resource, one row per policy statement.

    Read from the role's policies (attached and inline), so the tutorial's FullAccess policies and the
    least-privilege mode's named actions on the lab's own ARNs can be compared side by side."""
    iam = lab.client("iam")
    rows = []
    for role in roles or list(MANAGED):
        if if_exists(lambda: iam.get_role(RoleName=role), f"reading the role {role}") is None:
            continue
        for name, kind, document in role_policies(lab, role):
            for statement in _statements(document):
                negated = "NotAction" in statement
                actions = _listed(statement.get("NotAction" if negated else "Action"))
                rows.append({"role": role, "policy": name, "kind": kind, "effect": statement.get("Effect", ""),
                             "actions": ("everything except " if negated else "") + ", ".join(actions),
                             "resources": ", ".join(_listed(statement.get("Resource", statement.get("NotResource"))))})
    return pd.DataFrame(rows, columns=ACCESS_COLUMNS)


def trust_frame(lab: Lab, role: str) -> pd.DataFrame:
    """Who may assume ``role``: its trust policy, one row per principal."""
    document = lab.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    rows = []
    for statement in _statements(document):
        principal = statement.get("Principal", {})
        pairs = [("*", "*")] if principal == "*" else [(kind, p) for kind, v in principal.items() for p in _listed(v)]
        for kind, who in pairs:
            rows.append({"role": role, "effect": statement.get("Effect", ""), "principal type": kind,
                         "principal": who, "actions": ", ".join(_listed(statement.get("Action")))})
    return pd.DataFrame(rows, columns=["role", "effect", "principal type", "principal", "actions"])


def role_documents(lab: Lab, role: str) -> list[str]:
    """Every policy document of ``role`` (attached and inline) as JSON text."""
    return [document if isinstance(document, str) else json.dumps(document)
            for _name, _kind, document in role_policies(lab, role)]


def role_allows(lab: Lab, role: str, action: str, resource: str, documents: list[str] | None = None) -> bool:
    """Whether ``role``'s policies (attached and inline; or ``documents`` read before with :func:`role_documents`)
    allow ``action`` on ``resource``, evaluated as IAM does (an explicit deny wins; a statement with a condition
    counts only if it holds without request context)."""
    return allowed_by(role_documents(lab, role) if documents is None else documents, action, resource)

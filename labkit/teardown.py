"""Delete everything the lab created, newest first, waiting where AWS needs it; then prove nothing is left.

Every delete tolerates "already gone", so teardown can be re-run after an interruption.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_result, stop_after_delay, wait_fixed

from labkit import troubleshoot
from labkit.errors import error_code, if_exists, last_result
from labkit.lookups import describe_db_instance, describe_instance
from labkit.names import (
    DB_SUBNET_GROUP,
    EC2_ROLE,
    FUNCTIONS,
    ROLES,
    SECRET_NAME,
    bucket_name,
    db_instance_id,
    layer_name,
    log_group,
    rule_name,
)
from labkit.session import Lab
from labkit.tagging import owned


def _quiet(call: Callable[[], Any]) -> Any:
    """``call()``; None when what it deletes or reads is already gone (errors.GONE)."""
    return if_exists(call, "tearing the lab down")


def _code_in(*codes: str) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, ClientError) and error_code(exc) in codes


def _retry(lab: Lab, call: Callable[[], Any], codes: tuple[str, ...] = ("DependencyViolation",),
           seconds: float = 1800) -> Any:
    """Some deletes wait on AWS (a VPC Lambda's network interfaces are released minutes after the function)."""
    return Retrying(retry=retry_if_exception(_code_in(*codes)), stop=stop_after_delay(seconds),
                    wait=wait_fixed(max(1, lab.target.poll_seconds)), reraise=True)(_quiet, call)


def delete_everything(lab: Lab, confirm: bool = False, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Tear the lab down in reverse dependency order; return what remains (an empty table when all is gone)."""
    lab.target.require_confirmation("Deleting the lab", confirm)
    say = progress or (lambda _message: None)
    # The roles go last: Lambda deletes its VPC network interfaces with the function's role, up to ~20 min
    # after the function is gone; without the role they stay, and so do lambda-sg, the subnets and the VPC.
    for label, action in (("troubleshooting probes", troubleshoot.cleanup), ("schedule", _delete_schedule),
                          ("functions and layer", _delete_functions),
                          ("report bucket", _delete_bucket), ("EC2 instance", _delete_instance),
                          ("database", _delete_database), ("secret", _delete_secret),
                          ("Lambda network interfaces (released by Lambda)", lambda lab: wait_for_lambda_enis(lab, say)),
                          ("network", _delete_network), ("IAM roles", _delete_roles)):
        say(f"deleting {label}")
        action(lab)
    return remaining_frame(lab)


def lab_network_interfaces(lab: Lab) -> list[dict]:
    """Every network interface in the lab's VPC (Lambda's, the endpoints', the instance's)."""
    ec2 = lab.client("ec2")
    vpc_ids = [v["VpcId"] for v in ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]]
    if not vpc_ids:
        return []
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
    return [eni for page in pages for eni in page["NetworkInterfaces"]]


def wait_for_lambda_enis(lab: Lab, say: Callable[[str], None] = lambda _m: None, seconds: float = 2700) -> list[dict]:
    """Wait until Lambda has deleted its network interfaces in the lab's VPC (AWS: up to ~20 minutes after the
    function). Returns those still there at the deadline (they then show in ``remaining_frame``)."""
    said_at: list[float] = []

    def tell(attempt: RetryCallState) -> None:  # at most once a minute
        now = attempt.seconds_since_start or 0.0  # set once an attempt has ended, as before a sleep
        if not said_at or now - said_at[-1] >= 60:
            said_at.append(now)
            left = last_result(attempt)
            say(f"  Lambda still holds {len(left)} network interface(s) "
                f"({', '.join(e['NetworkInterfaceId'] for e in left)}); it releases them within ~20 minutes")

    return Retrying(retry=retry_if_result(bool), stop=stop_after_delay(seconds),
                    wait=wait_fixed(max(1, lab.target.poll_seconds)), before_sleep=tell,
                    retry_error_callback=last_result)(
        lambda: [e for e in lab_network_interfaces(lab) if e.get("InterfaceType") == "lambda"])


def _delete_schedule(lab: Lab) -> None:
    events = lab.client("events")
    if not owned(lab, "eventbridge rule", rule_name(lab)):
        return
    targets = _quiet(lambda: events.list_targets_by_rule(Rule=rule_name(lab))["Targets"]) or []
    if targets:
        events.remove_targets(Rule=rule_name(lab), Ids=[t["Id"] for t in targets])
    _quiet(lambda: events.delete_rule(Name=rule_name(lab)))


def _delete_functions(lab: Lab) -> None:
    lam, logs = lab.client("lambda"), lab.client("logs")
    for name in FUNCTIONS:
        if owned(lab, "function", name):
            _quiet(lambda: lam.delete_function(FunctionName=name))
            _quiet(lambda: logs.delete_log_group(logGroupName=log_group(name)))
    for version in _quiet(lambda: lam.list_layer_versions(LayerName=layer_name(lab))["LayerVersions"]) or []:
        _quiet(lambda: lam.delete_layer_version(LayerName=layer_name(lab), VersionNumber=version["Version"]))


def _delete_bucket(lab: Lab) -> None:
    s3, name = lab.client("s3"), bucket_name(lab)
    if _quiet(lambda: s3.head_bucket(Bucket=name)) is None:
        return
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        items = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                 for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if items:
            s3.delete_objects(Bucket=name, Delete={"Objects": items, "Quiet": True})
    s3.delete_bucket(Bucket=name)


def _delete_instance(lab: Lab) -> None:
    instance = describe_instance(lab)
    if instance:
        ec2 = lab.client("ec2")
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance["InstanceId"]],
                                                   WaiterConfig={"Delay": max(1, int(lab.target.poll_seconds))})


def _delete_database(lab: Lab, seconds: float = 3600) -> None:
    """Delete the instance, or wait for a deletion already going (a re-run after an interrupted teardown)."""
    rds = lab.client("rds")

    def delete_unless_deleting() -> dict | None:
        db = describe_db_instance(lab)
        if db and db["DBInstanceStatus"] != "deleting":
            _quiet(lambda: rds.delete_db_instance(DBInstanceIdentifier=db_instance_id(lab),
                                                  SkipFinalSnapshot=True, DeleteAutomatedBackups=True))
        return db

    # InvalidDBInstanceState: a state (creating, modifying, backing-up) that cannot be deleted yet
    db = Retrying(retry=retry_if_exception(_code_in("InvalidDBInstanceState")), stop=stop_after_delay(seconds),
                  wait=wait_fixed(max(1, lab.target.poll_seconds)), reraise=True)(delete_unless_deleting)
    if db:
        delay = max(1, int(lab.target.poll_seconds * 2))
        rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=db_instance_id(lab),
                                                   WaiterConfig={"Delay": delay, "MaxAttempts": 1800 // delay})
    if owned(lab, "db subnet group", DB_SUBNET_GROUP):
        _quiet(lambda: rds.delete_db_subnet_group(DBSubnetGroupName=DB_SUBNET_GROUP))


def _delete_secret(lab: Lab) -> None:
    if owned(lab, "secret", SECRET_NAME):
        _quiet(lambda: lab.client("secretsmanager").delete_secret(SecretId=SECRET_NAME,
                                                              ForceDeleteWithoutRecovery=True))


def _delete_roles(lab: Lab) -> None:
    client = lab.client("iam")
    profile = _quiet(lambda: client.get_instance_profile(InstanceProfileName=EC2_ROLE)["InstanceProfile"])
    if profile and owned(lab, "instance profile", EC2_ROLE):
        for role in profile.get("Roles", []):
            client.remove_role_from_instance_profile(InstanceProfileName=EC2_ROLE, RoleName=role["RoleName"])
        _quiet(lambda: client.delete_instance_profile(InstanceProfileName=EC2_ROLE))
    for role in ROLES:
        if not owned(lab, "role", role):
            continue
        for policy in client.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            client.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        for name in client.list_role_policies(RoleName=role)["PolicyNames"]:
            client.delete_role_policy(RoleName=role, PolicyName=name)
        _quiet(lambda: client.delete_role(RoleName=role))


def _delete_network(lab: Lab) -> None:
    ec2 = lab.client("ec2")
    vpc_ids = [v["VpcId"] for v in ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]]
    if vpc_ids:
        endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["VpcEndpoints"]
        live = [e["VpcEndpointId"] for e in endpoints if e.get("State", "").lower() not in ("deleted",)]
        if live:
            ec2.delete_vpc_endpoints(VpcEndpointIds=live)
    groups = ec2.describe_security_groups(Filters=lab.tag_filter())["SecurityGroups"]
    for group in groups:  # references between groups block deletion: revoke them first
        if group.get("IpPermissions"):
            _quiet(lambda: ec2.revoke_security_group_ingress(GroupId=group["GroupId"],
                                                             IpPermissions=group["IpPermissions"]))
    for group in groups:
        _retry(lab, lambda: ec2.delete_security_group(GroupId=group["GroupId"]))
    for table in ec2.describe_route_tables(Filters=lab.tag_filter())["RouteTables"]:
        for association in table.get("Associations", []):
            if not association.get("Main"):
                _quiet(lambda: ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"]))
        _retry(lab, lambda: ec2.delete_route_table(RouteTableId=table["RouteTableId"]))
    for igw in ec2.describe_internet_gateways(Filters=lab.tag_filter())["InternetGateways"]:
        for attachment in igw.get("Attachments", []):
            _quiet(lambda: ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"],
                                                       VpcId=attachment["VpcId"]))
        _quiet(lambda: ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"]))
    for subnet in ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]:
        _retry(lab, lambda: ec2.delete_subnet(SubnetId=subnet["SubnetId"]))
    if vpc_ids:  # a custom network ACL (notebook 15's, or yours) blocks DeleteVpc; its associations went with the subnets
        for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": vpc_ids},
                                                      {"Name": "default", "Values": ["false"]}])["NetworkAcls"]:
            _retry(lab, lambda: ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"]))
    for vpc_id in vpc_ids:
        _retry(lab, lambda: ec2.delete_vpc(VpcId=vpc_id))


def remaining_frame(lab: Lab) -> pd.DataFrame:
    """Everything of the lab that still exists, by tag and by name. Empty means nothing is left (and no bill)."""
    ec2, rows = lab.client("ec2"), []

    def found(kind: str, ident: str) -> None:
        rows.append({"kind": kind, "id": ident})

    for vpc in ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]:
        found("vpc", vpc["VpcId"])
    for subnet in ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]:
        found("subnet", subnet["SubnetId"])
    for igw in ec2.describe_internet_gateways(Filters=lab.tag_filter())["InternetGateways"]:
        found("internet gateway", igw["InternetGatewayId"])
    for table in ec2.describe_route_tables(Filters=lab.tag_filter())["RouteTables"]:
        found("route table", table["RouteTableId"])
    for group in ec2.describe_security_groups(Filters=lab.tag_filter())["SecurityGroups"]:
        found("security group", group["GroupId"])
    for acl in ec2.describe_network_acls(Filters=lab.tag_filter())["NetworkAcls"]:
        found("network acl", acl["NetworkAclId"])
    for endpoint in ec2.describe_vpc_endpoints(Filters=lab.tag_filter())["VpcEndpoints"]:
        if endpoint.get("State", "").lower() != "deleted":
            found("vpc endpoint", endpoint["VpcEndpointId"])
    instance = describe_instance(lab)
    if instance:
        found("ec2 instance", instance["InstanceId"])
    if describe_db_instance(lab):
        found("rds instance", db_instance_id(lab))
    named = [("db subnet group", DB_SUBNET_GROUP), ("secret", SECRET_NAME),
             ("eventbridge rule", rule_name(lab)), ("instance profile", EC2_ROLE),
             *[("role", role) for role in ROLES],
             *[("function", fn) for fn in FUNCTIONS]]
    for kind, ident in named:
        if owned(lab, kind, ident):
            found(kind, ident)
    if _quiet(lambda: lab.client("s3").head_bucket(Bucket=bucket_name(lab))) is not None:
        found("bucket", bucket_name(lab))
    lam = lab.client("lambda")
    for version in _quiet(lambda: lam.list_layer_versions(LayerName=layer_name(lab))["LayerVersions"]) or []:
        found("lambda layer version", version["LayerVersionArn"])
    for eni in lab_network_interfaces(lab):
        found(f"network interface ({eni.get('InterfaceType', 'interface')})",
              f"{eni['NetworkInterfaceId']} {eni.get('Description', '')}".strip())
    return pd.DataFrame(rows, columns=["kind", "id"])

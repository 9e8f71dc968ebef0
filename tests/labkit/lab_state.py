"""What a student has of a lab, as one comparable document: every resource of every service the lab uses (issue 23).

:func:`fingerprint` reads the lab through the public API (and the database through its server), the way the
student sees it; :func:`differences` compares two fingerprints, leaving out what AWS itself derives from "now"
(:data:`MOVING`) and letting the RDS event list and the event history grow (a restart adds "DB instance
restarted"; the fingerprint's own reads add events).
"""
from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from typing import Any

from labkit import compute
from labkit.localcloud import control

# Fields AWS (and moto) compute from the current time or from activity, which a restart does not keep still.
MOVING = {"ResponseMetadata", "LatestRestorableTime", "RoleLastUsed", "LastAccessedDate", "lastIngestionTime",
          "lastEventTimestamp", "storedBytes", "uploadSequenceToken", "NextToken", "Marker", "IsTruncated",
          "LastModifiedDate", "CreatedDate"}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in MOVING}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]


def fingerprint(lab: Any, home: Any, db_connection: Any) -> dict:
    """Every item of issue 23's point 1, read as the student would."""
    ec2, rds, lam, iam = lab.client("ec2"), lab.client("rds"), lab.client("lambda"), lab.client("iam")
    sm, s3, events, logs = lab.client("secretsmanager"), lab.client("s3"), lab.client("events"), lab.client("logs")
    ssm, trail = lab.client("ssm"), lab.client("cloudtrail")
    out: dict[str, Any] = {}
    # the VPC and everything in it
    out["vpcs"] = ec2.describe_vpcs()["Vpcs"]
    out["subnets"] = ec2.describe_subnets()["Subnets"]
    out["route_tables"] = ec2.describe_route_tables()["RouteTables"]
    out["internet_gateways"] = ec2.describe_internet_gateways()["InternetGateways"]
    out["security_groups"] = ec2.describe_security_groups()["SecurityGroups"]
    out["security_group_rules"] = ec2.describe_security_group_rules()["SecurityGroupRules"]
    out["vpc_endpoints"] = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    out["network_interfaces"] = ec2.describe_network_interfaces()["NetworkInterfaces"]
    out["addresses"] = ec2.describe_addresses()["Addresses"]
    out["instances"] = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    out["instance_profiles_attached"] = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    out["network_acls"] = ec2.describe_network_acls()["NetworkAcls"]  # with their entries and associations
    out["instance_disks"] = {i["InstanceId"]: _disk(home, i["InstanceId"]) for i in out["instances"]}
    # RDS: instances, subnet groups, events (compared as a prefix), the rows
    out["db_instances"] = rds.describe_db_instances()["DBInstances"]
    out["db_subnet_groups"] = rds.describe_db_subnet_groups()["DBSubnetGroups"]
    out["db_tags"] = {d["DBInstanceArn"]: rds.list_tags_for_resource(ResourceName=d["DBInstanceArn"])["TagList"]
                      for d in out["db_instances"]}
    out["rds_events"] = [(e["SourceIdentifier"], e["Message"], str(e["Date"]))
                         for e in rds.describe_events(Duration=20160)["Events"]]
    with db_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT order_id, customer_name, product, quantity, amount, created_at FROM orders "
                    "ORDER BY order_id")
        out["orders"] = [[str(v) for v in row] for row in cur.fetchall()]
    # Lambda: functions, code, versions, layers, environment, permissions, tags
    functions = _pages(lam, "list_functions", "Functions")
    out["functions"] = functions
    out["function_code"] = {f["FunctionName"]: lam.get_function(FunctionName=f["FunctionName"])["Configuration"]
                            ["CodeSha256"] for f in functions}
    out["function_versions"] = {f["FunctionName"]: _pages(lam, "list_versions_by_function", "Versions",
                                                          FunctionName=f["FunctionName"]) for f in functions}
    out["function_policies"] = {f["FunctionName"]: json.loads(_policy(lam, f["FunctionName"])) for f in functions}
    out["function_tags"] = {f["FunctionName"]: lam.list_tags(Resource=f["FunctionArn"])["Tags"] for f in functions}
    out["layers"] = _pages(lam, "list_layers", "Layers")
    out["layer_versions"] = {layer["LayerName"]: _pages(lam, "list_layer_versions", "LayerVersions",
                                                        LayerName=layer["LayerName"]) for layer in out["layers"]}
    # S3: buckets, objects (ETags), configuration
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    out["buckets"] = buckets
    out["objects"] = {b: [(o["Key"], o["ETag"], o["Size"]) for o in _pages(s3, "list_objects_v2", "Contents", Bucket=b)]
                      for b in buckets}
    out["bucket_lifecycles"] = {b: _lifecycle(s3, b) for b in buckets}
    out["bucket_tags"] = {b: _bucket_tags(s3, b) for b in buckets}
    # secrets and their versions
    secrets = sm.list_secrets()["SecretList"]
    out["secrets"] = secrets
    out["secret_versions"] = {s["Name"]: sorted((v["VersionId"], tuple(v.get("VersionStages", [])))
                                                for v in sm.list_secret_version_ids(SecretId=s["Name"])["Versions"])
                              for s in secrets}
    out["secret_values"] = {s["Name"]: sm.get_secret_value(SecretId=s["Name"])["SecretString"] for s in secrets}
    # EventBridge
    rules = events.list_rules()["Rules"]
    out["rules"] = rules
    out["targets"] = {r["Name"]: events.list_targets_by_rule(Rule=r["Name"])["Targets"] for r in rules}
    out["rule_tags"] = {r["Name"]: events.list_tags_for_resource(ResourceARN=r["Arn"])["Tags"] for r in rules}
    # IAM: users, roles, policies, profiles, the lab-admin keys
    out["users"] = iam.list_users()["Users"]
    out["access_keys"] = {u["UserName"]: iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
                          for u in out["users"]}
    out["roles"] = _pages(iam, "list_roles", "Roles")
    out["role_policies"] = {r["RoleName"]: (sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(
        RoleName=r["RoleName"])["AttachedPolicies"]), sorted(iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]))
        for r in out["roles"]}
    out["role_tags"] = {r["RoleName"]: iam.list_role_tags(RoleName=r["RoleName"])["Tags"] for r in out["roles"]}
    out["user_tags"] = {u["UserName"]: iam.list_user_tags(UserName=u["UserName"])["Tags"] for u in out["users"]}
    out["policies"] = _pages(iam, "list_policies", "Policies", Scope="Local")
    out["instance_profiles"] = _pages(iam, "list_instance_profiles", "InstanceProfiles")
    # CloudWatch Logs
    groups = _pages(logs, "describe_log_groups", "logGroups")
    out["log_groups"] = groups
    out["log_streams"] = {g["logGroupName"]: sorted(s["logStreamName"] for s in _pages(
        logs, "describe_log_streams", "logStreams", logGroupName=g["logGroupName"])) for g in groups}
    out["log_events"] = {g["logGroupName"]: _log_events(logs, g["logGroupName"]) for g in groups}
    # CloudWatch metrics: every metric and the sum of its data points (EventBridge's TriggeredRules/Invocations,
    # Lambda's Invocations/Duration...), on the lab clock
    out["metrics"] = _metrics(lab.client("cloudwatch"), home)
    # SSM: the commands sent (tasks 5-8 ask for them), parameters
    out["ssm_commands"] = sorted((c["CommandId"], c["Status"], tuple(c["Parameters"].get("commands", [])))
                                 for c in ssm.list_commands()["Commands"])
    out["ssm_parameters"] = _pages(ssm, "describe_parameters", "Parameters")
    # CloudTrail's event history (compared as: every event before is there after, same ids)
    out["trail_events"] = [(e["EventId"], e["EventName"], str(e["EventTime"]))
                           for e in _pages(trail, "lookup_events", "Events")]
    # the lab clock, the app's URL
    out["clock_offset"] = control.lab_clock(home)["offset_seconds"]
    out["timing"] = control.cloud_timing(home)  # realistic mode and its delays
    out["app_url"] = compute.app_url(lab)
    return _clean(out)


def _disk(home: Any, instance_id: str) -> list[tuple[str, int]]:
    """The files on an instance's disk a student or the lab wrote (its units, the app, /root), with their sizes;
    not /run (a tmpfs: a reboot empties it), /tmp, /var (logs and caches grow) or the app's venv (thousands)."""
    root = Path(home) / "ec2" / instance_id
    kept = []
    for top in ("etc", "root", "opt"):
        for path in sorted((root / top).rglob("*")) if (root / top).is_dir() else []:
            relative = path.relative_to(root).as_posix()
            if "/venv/" in relative or "__pycache__" in relative or not path.is_file() or path.is_symlink():
                continue
            kept.append((relative, path.stat().st_size))
    return kept


def _log_events(logs: Any, group: str) -> list[tuple[str, int, str]]:
    return sorted((e["logStreamName"], e["timestamp"], e["message"])
                  for e in _pages(logs, "filter_log_events", "events", logGroupName=group))


def _metrics(cloudwatch: Any, home: Any) -> dict[str, dict[str, float]]:
    now = dt.datetime.fromisoformat(control.lab_clock(home)["now"])
    found = {}
    for metric in _pages(cloudwatch, "list_metrics", "Metrics"):
        dims = sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
        points = cloudwatch.get_metric_statistics(
            Namespace=metric["Namespace"], MetricName=metric["MetricName"], Dimensions=metric.get("Dimensions", []),
            StartTime=now - dt.timedelta(days=30), EndTime=now + dt.timedelta(days=1), Period=86400,
            Statistics=["SampleCount", "Sum"])["Datapoints"]
        key = f"{metric['Namespace']} {metric['MetricName']} {dims}"
        found[key] = {"samples": sum(p["SampleCount"] for p in points), "sum": round(sum(p["Sum"] for p in points), 3)}
    return found


def _policy(lam: Any, name: str) -> str:
    try:
        return lam.get_policy(FunctionName=name)["Policy"]
    except lam.exceptions.ResourceNotFoundException:
        return "null"


def _lifecycle(s3: Any, bucket: str) -> Any:
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError:
        return None


def _bucket_tags(s3: Any, bucket: str) -> Any:
    try:
        return s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except s3.exceptions.ClientError:
        return None


GROWING = {"rds_events", "trail_events"}
# Compared as: what was there before is there after, with the same values; telemetry of the functions' runs after
# the first look (the fingerprint's own reads run none, but a cold start after the restart does) may add to them
GROWING_MAPS = {"log_events", "metrics"}  # compared as: what was there before is there after


def differences(before: dict, after: dict) -> dict:
    """What differs between two fingerprints, by key (empty: the lab is the same)."""
    found = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key in GROWING:
            missing = [item for item in old or [] if item not in (new or [])]
            if missing:
                found[key] = {"missing after": missing[:10]}
        elif key in GROWING_MAPS:
            missing = {k: v for k, v in (old or {}).items() if k not in (new or {}) or not _within(v, new[k])}
            if missing:
                found[key] = {"missing or changed after": dict(list(missing.items())[:10])}
        elif old != new:
            found[key] = {"before": old, "after": new}
    return found


def _within(old: Any, new: Any) -> bool:
    """``old`` is kept in ``new``: a list's items are all there, a metric's samples and sum did not go down."""
    if isinstance(old, dict):
        return all(new.get(k, 0) >= v for k, v in old.items())
    return all(item in new for item in old)


def app_answers(url: str) -> int:
    with urllib.request.urlopen(url + "healthz", timeout=30) as answer:
        return answer.status

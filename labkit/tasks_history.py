"""The "Your turn" checks proven with the API history (CloudTrail's event history): steps 9 and 12.

Step 9: read the keys of the secret's previous version; the check finds your ``GetSecretValue`` of a version
other than the current one. Step 12: give the report function's role the least privilege; the check evaluates
the role's policies as IAM does (enough for what the function calls, nothing beyond), then looks in the history
for the function's session reading the secret after your last change to the role, without a refusal, and in S3
for a report written after it. On AWS an event reaches the history within about five minutes: a check run
sooner says "not yet" and why.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.exceptions import ClientError

from labkit import history, iam, names
from labkit.errors import DENIED, GONE, error_code
from labkit.lookups import function_configuration

__all__ = ["read_previous_version", "report_least_privilege"]

HISTORY_DELAY = "on AWS a call shows in the history within about five minutes: run the check again then"


def _record(event: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(event.get("CloudTrailEvent") or "{}")
    return record


def _secret_arn(lab: Any) -> str | None:
    try:
        return str(lab.client("secretsmanager").describe_secret(SecretId=names.SECRET_NAME)["ARN"])
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise


# ---- step 9 ------------------------------------------------------------------------------------------------

def read_previous_version(lab: Any) -> tuple[bool, str]:
    """Whether someone read a version of the lab's secret other than AWSCURRENT (by stage or by version id)."""
    arn = _secret_arn(lab)
    if arn is None:
        return False, f"the secret {names.SECRET_NAME} does not exist yet"
    versions = lab.client("secretsmanager").list_secret_version_ids(SecretId=names.SECRET_NAME)["Versions"]
    current = {v["VersionId"] for v in versions if "AWSCURRENT" in v.get("VersionStages", [])}
    if len(versions) < 2:
        return False, f"{names.SECRET_NAME} has one version only: run this notebook's cells above (step 9 adds one)"
    for event in history.lookup(lab, limit=200, EventName="GetSecretValue"):
        record = _record(event)
        params = record.get("requestParameters") or {}
        if params.get("secretId") not in (names.SECRET_NAME, arn) or record.get("errorCode"):
            continue
        stage, version = params.get("versionStage"), params.get("versionId")
        if (stage and stage != "AWSCURRENT") or (version and version not in current):
            which = f"the version labelled {stage}" if stage else f"version {version}"
            return True, (f"{history.who(record.get('userIdentity', {}))} read {which} of {names.SECRET_NAME} at "
                          f"{event['EventTime']:%Y-%m-%d %H:%M:%S} UTC; it is in the API history")
    return False, f"the API history has no read of an earlier version of {names.SECRET_NAME} yet ({HISTORY_DELAY})"


# ---- step 12 -----------------------------------------------------------------------------------------------

ROLE_CHANGES = {"PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy", "DetachRolePolicy"}


def _needs_and_excess(lab: Any, secret_arn: str) -> tuple[list[str], list[str]]:
    """(what the report role lacks of what the function calls, what it may do beyond that), per IAM's evaluation."""
    role, bucket = names.REPORT_ROLE, names.bucket_name(lab)
    report = f"arn:aws:s3:::{bucket}/reports/dt=2026-01-01/orders-delta.csv"
    log_group = f"arn:aws:logs:{lab.region}:{lab.account_id}:log-group:{names.log_group(names.REPORT_FUNCTION)}:*"
    needs = {"secretsmanager:GetSecretValue on the secret": ("secretsmanager:GetSecretValue", secret_arn),
             "s3:PutObject on the bucket's reports/": ("s3:PutObject", report),
             "logs:PutLogEvents on its log group": ("logs:PutLogEvents", log_group),
             "ec2:CreateNetworkInterface (the VPC)": ("ec2:CreateNetworkInterface", "*")}
    other_secret = secret_arn.rsplit(":", 1)[0] + ":another-secret-AbCdEf"
    beyond = {"read other secrets": ("secretsmanager:GetSecretValue", other_secret),
              "change the secret": ("secretsmanager:PutSecretValue", secret_arn),
              "delete reports": ("s3:DeleteObject", report),
              "write to other buckets": ("s3:PutObject", "arn:aws:s3:::another-bucket/key"),
              "read other buckets": ("s3:GetObject", "arn:aws:s3:::another-bucket/key"),
              "delete the bucket": ("s3:DeleteBucket", f"arn:aws:s3:::{bucket}")}
    documents = iam.role_documents(lab, role)
    lacks = [what for what, (action, resource) in needs.items()
             if not iam.role_allows(lab, role, action, resource, documents)]
    excess = [what for what, (action, resource) in beyond.items()
              if iam.role_allows(lab, role, action, resource, documents)]
    return lacks, excess


def _last_role_change(lab: Any) -> dt.datetime | None:
    """When the report role's policies last changed, from the API history."""
    for event in history.lookup(lab, limit=500, EventSource="iam.amazonaws.com"):
        record = _record(event)
        if event["EventName"] in ROLE_CHANGES and (record.get("requestParameters") or {}).get(
                "roleName") == names.REPORT_ROLE and not record.get("errorCode"):
            changed: dt.datetime = event["EventTime"]
            return changed
    return None


def report_least_privilege(lab: Any) -> tuple[bool, str]:
    """Whether the report function's role has exactly what the function calls, and the history proves a run
    after the change read the secret unrefused and wrote a report."""
    if function_configuration(lab, names.REPORT_FUNCTION) is None:
        return False, f"{names.REPORT_FUNCTION} does not exist yet (run this notebook's cells above)"
    secret_arn = _secret_arn(lab)
    if secret_arn is None:
        return False, f"the secret {names.SECRET_NAME} does not exist"
    lacks, excess = _needs_and_excess(lab, secret_arn)
    if excess:
        return False, f"{names.REPORT_ROLE} may still {', '.join(excess)}: more than the function needs"
    if lacks:
        return False, f"{names.REPORT_ROLE} now lacks what the function needs: {', '.join(lacks)}"
    changed = _last_role_change(lab)
    if changed is None:
        return False, f"the API history shows no change to {names.REPORT_ROLE}'s policies yet ({HISTORY_DELAY})"
    session = history.lookup(lab, limit=200, since=changed, Username=names.REPORT_FUNCTION)
    refused = [e for e in session if _record(e).get("errorCode") in DENIED]
    if refused:
        record = _record(refused[0])
        return False, (f"after your change the function was refused {refused[0]['EventName']}: "
                       f"{record.get('errorCode')}: {record.get('errorMessage', '')[:200]}")
    reads = [e for e in session if e["EventName"] == "GetSecretValue"]
    if not reads:
        return False, (f"no GetSecretValue by {names.REPORT_FUNCTION} since your change at {changed:%H:%M:%S}: make "
                       f"it start afresh (change its configuration) and run it ({HISTORY_DELAY})")
    written = [o for page in lab.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=names.bucket_name(lab), Prefix="reports/") for o in page.get("Contents", [])
        if o["LastModified"] >= changed]
    if not written:
        return False, "the function read its secret after your change, but wrote no report since: run it again"
    return True, (f"{names.REPORT_ROLE} may read {names.SECRET_NAME}, write reports/ and its logs, and nothing "
                  f"beyond; after your change at {changed:%H:%M:%S} the function read the secret "
                  f"({history.who(_record(reads[0]).get('userIdentity', {}))}) and wrote {written[-1]['Key']}")

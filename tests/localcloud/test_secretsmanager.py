"""Secrets Manager's recovery window, as AWS answers it (issue 26, spec 1.10): DeleteSecret's parameters, and a
secret scheduled for deletion refused for everything but Describe, List(IncludePlannedDeletion), Restore and a
forced delete; the refusals change nothing."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

MARKED = "You can't perform this operation on the secret because it was marked for deletion."


def _refused(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_delete_secret_parameters_are_refused_in_aws_words(cloud):
    sm = cloud.client("secretsmanager")
    sm.create_secret(Name="sm26-params", SecretString="{}")
    for window in (3, 31):
        assert _refused(sm.delete_secret, SecretId="sm26-params", RecoveryWindowInDays=window) == (
            "InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            400)
    assert _refused(sm.delete_secret, SecretId="sm26-params", RecoveryWindowInDays=7,
                    ForceDeleteWithoutRecovery=True) == (
        "InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with "
                                     "RecoveryWindowInDays.", 400)
    assert "DeletedDate" not in sm.describe_secret(SecretId="sm26-params")  # nothing was scheduled


def test_a_secret_scheduled_for_deletion_is_refused_until_restored(cloud):
    sm = cloud.client("secretsmanager")
    arn = sm.create_secret(Name="sm26-scheduled", SecretString='{"v": 1}')["ARN"]
    deleted = sm.delete_secret(SecretId="sm26-scheduled")  # default window: 30 days
    now = dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"])
    assert dt.timedelta(days=29, hours=23) < deleted["DeletionDate"] - now < dt.timedelta(days=30, hours=1)

    refused = {
        "GetSecretValue": lambda: sm.get_secret_value(SecretId="sm26-scheduled"),
        "GetSecretValue by ARN": lambda: sm.get_secret_value(SecretId=arn),
        "PutSecretValue": lambda: sm.put_secret_value(SecretId="sm26-scheduled", SecretString='{"v": 2}'),
        "UpdateSecret": lambda: sm.update_secret(SecretId="sm26-scheduled", Description="new"),
        "TagResource": lambda: sm.tag_resource(SecretId="sm26-scheduled", Tags=[{"Key": "k", "Value": "v"}]),
        "UntagResource": lambda: sm.untag_resource(SecretId="sm26-scheduled", TagKeys=["k"]),
        "PutResourcePolicy": lambda: sm.put_resource_policy(SecretId="sm26-scheduled", ResourcePolicy=json.dumps(
            {"Version": "2012-10-17", "Statement": []})),
        "RotateSecret": lambda: sm.rotate_secret(SecretId="sm26-scheduled"),
        "DeleteSecret again": lambda: sm.delete_secret(SecretId="sm26-scheduled", RecoveryWindowInDays=7),
    }
    answers = {name: _refused(call) for name, call in refused.items()}
    assert answers == dict.fromkeys(refused, ("InvalidRequestException", MARKED, 400))
    assert _refused(sm.create_secret, Name="sm26-scheduled", SecretString="{}") == (
        "InvalidRequestException", "You can't create this secret because a secret with this name is already "
                                   "scheduled for deletion.", 400)

    # what AWS allows on a scheduled secret
    described = sm.describe_secret(SecretId="sm26-scheduled")
    assert "DeletedDate" in described and "Description" not in described and "Tags" not in described
    names = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    assert "sm26-scheduled" in names
    assert "sm26-scheduled" not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    sm.restore_secret(SecretId="sm26-scheduled")
    assert json.loads(sm.get_secret_value(SecretId="sm26-scheduled")["SecretString"]) == {"v": 1}  # unchanged


def test_a_forced_delete_of_a_scheduled_secret_frees_its_name(cloud):
    sm = cloud.client("secretsmanager")
    sm.create_secret(Name="sm26-forced", SecretString="{}")
    sm.delete_secret(SecretId="sm26-forced", RecoveryWindowInDays=7)
    sm.delete_secret(SecretId="sm26-forced", ForceDeleteWithoutRecovery=True)
    assert sm.create_secret(Name="sm26-forced", SecretString="{}")["Name"] == "sm26-forced"
    # "If you forcibly delete an already deleted or nonexistent secret, the operation does not return
    # ResourceNotFoundException"
    assert sm.delete_secret(SecretId="sm26-never-was", ForceDeleteWithoutRecovery=True)["Name"] == "sm26-never-was"


def test_list_secret_version_ids_names_the_secrets_arn_and_each_versions_creation(cloud):
    sm = cloud.client("secretsmanager")
    arn = sm.create_secret(Name="versions-listed", SecretString="one")["ARN"]
    sm.put_secret_value(SecretId="versions-listed", SecretString="two")
    by_name = sm.list_secret_version_ids(SecretId="versions-listed")
    assert by_name["ARN"] == arn and by_name["Name"] == "versions-listed"  # botocore's model: ARN of 20+ chars
    assert sm.list_secret_version_ids(SecretId=arn)["ARN"] == arn
    versions = {v["VersionId"]: v for v in by_name["Versions"]}
    described = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert {k: sorted(v["VersionStages"]) for k, v in versions.items()} == {k: sorted(v) for k, v in described.items()}
    for version_id, version in versions.items():  # each version's own creation, as GetSecretValue says it
        assert version["CreatedDate"] == sm.get_secret_value(SecretId=arn, VersionId=version_id)["CreatedDate"]
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)

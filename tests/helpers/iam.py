"""IAM for tests: policy documents and users with the permissions a test gives them."""
from __future__ import annotations

import json
from typing import Any


def policy_document(*statements: dict) -> str:
    """An IAM policy document (JSON) holding ``statements``."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def create_user(cloud: Any, name: str, *statements: dict, managed: tuple[str, ...] | list[str] = ()) -> dict:
    """A new IAM user with the given inline statements and managed policies; returns its client keys."""
    iam = cloud.client("iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=policy_document(*statements))
    for arn in managed:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

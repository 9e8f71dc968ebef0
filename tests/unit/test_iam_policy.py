"""The policy engine alone: AWS's evaluation rules, statement by statement."""
from __future__ import annotations

import json

import pytest

from labkit.iam_policy import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, evaluate, wildcard_match


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_nothing_allows_by_default():
    assert evaluate([], "s3:GetObject", "arn:aws:s3:::b/k") == IMPLICIT_DENY


def test_explicit_deny_wins_in_any_policy():
    allow = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    deny = doc({"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::b/*"})
    assert evaluate([allow, deny], "s3:DeleteObject", "arn:aws:s3:::b/k") == EXPLICIT_DENY
    assert evaluate([allow, deny], "s3:DeleteObject", "arn:aws:s3:::other/k") == ALLOW


def test_actions_ignore_case_resources_do_not():
    policy = doc({"Effect": "Allow", "Action": "SecretsManager:getSecretValue",
                  "Resource": "arn:aws:secretsmanager:us-east-1:1:secret:Db-*"})
    assert evaluate([policy], "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:Db-AbC") == ALLOW
    assert evaluate([policy], "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:db-AbC") \
        == IMPLICIT_DENY


@pytest.mark.parametrize("pattern, value, matches", [
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/reports/x.csv", True), ("arn:aws:s3:::b/?", "arn:aws:s3:::b/xy", False),
    ("arn:aws:s3:::b[1]", "arn:aws:s3:::b[1]", True), ("arn:aws:s3:::b[1]", "arn:aws:s3:::b1", False),
])
def test_wildcards_are_only_star_and_question_mark(pattern, value, matches):
    assert wildcard_match(pattern, value) is matches


def test_not_action_and_not_resource():
    policy = doc({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret-bucket/*"})
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k") == ALLOW
    assert evaluate([policy], "iam:CreateUser", "*") == IMPLICIT_DENY
    assert evaluate([policy], "s3:GetObject", "arn:aws:s3:::secret-bucket/k") == IMPLICIT_DENY


def test_conditions_need_their_key_unless_if_exists_or_negated():
    pass_role = doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                     "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}})
    assert evaluate([pass_role], "iam:PassRole", "arn:r", {"iam:PassedToService": "lambda.amazonaws.com"}) == ALLOW
    assert evaluate([pass_role], "iam:PassRole", "arn:r", {"iam:PassedToService": "ec2.amazonaws.com"}) == IMPLICIT_DENY
    assert evaluate([pass_role], "iam:PassRole", "arn:r", {}) == IMPLICIT_DENY
    if_exists = doc({"Effect": "Allow", "Action": "*", "Resource": "*",
                     "Condition": {"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}}})
    assert evaluate([if_exists], "s3:GetObject", "*", {}) == ALLOW
    assert evaluate([if_exists], "s3:GetObject", "*", {"aws:RequestedRegion": "eu-west-1"}) == IMPLICIT_DENY
    negated = doc({"Effect": "Deny", "Action": "*", "Resource": "*",
                   "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}}})
    assert evaluate([negated], "s3:GetObject", "*", {"aws:RequestedRegion": "us-west-2"}) == IMPLICIT_DENY
    assert evaluate([negated], "s3:GetObject", "*", {"aws:RequestedRegion": "eu-west-1"}) == EXPLICIT_DENY


def test_arn_like_and_null_conditions():
    source = doc({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*",
                  "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:events:us-east-1:1:rule/daily-*"}}})
    assert evaluate([source], "lambda:InvokeFunction", "*", {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/daily-x"}) \
        == ALLOW
    assert evaluate([source], "lambda:InvokeFunction", "*", {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/x"}) \
        == IMPLICIT_DENY
    null = doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"aws:TokenIssueTime": "true"}}})
    assert evaluate([null], "s3:GetObject", "*", {}) == ALLOW
    assert evaluate([null], "s3:GetObject", "*", {"aws:TokenIssueTime": "now"}) == IMPLICIT_DENY

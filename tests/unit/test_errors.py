"""Errors that must not hide: a refusal is never "absent", a bug in a check is never a failed check.

The local cloud cannot refuse yet, so AWS's AccessDenied answers come from botocore's Stubber.
"""
from __future__ import annotations

import urllib.error

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from labkit import StepError, checks, functions, iam, network, schedule
from labkit.errors import GONE, AccessDenied, if_exists

DENIED_MESSAGE = "User: arn:aws:iam::123456789012:user/student is not authorized to perform this action"


def _raise(code: str, operation: str = "GetRole"):
    def call():
        raise ClientError({"Error": {"Code": code, "Message": "m"}}, operation)
    return call


class StubbedLab:
    name = "unit-lab"
    region = "us-east-1"

    def __init__(self, service: str) -> None:
        self._client = boto3.client(service, region_name=self.region)
        self.service = service
        self.stub = Stubber(self._client)

    def client(self, service: str):
        assert service == self.service, f"unexpected client {service}"
        return self._client


def test_if_exists_reads_only_gone_as_absent():
    assert if_exists(_raise("NoSuchEntity"), "reading a role") is None
    assert {"ResourceNotFoundException", "DBInstanceNotFound", "InvalidVpcID.NotFound", "NoSuchBucket"} <= GONE
    with pytest.raises(AccessDenied, match=r"AWS denied reading a role \(GetRole\): AccessDenied"):
        if_exists(_raise("AccessDenied"), "reading a role")
    with pytest.raises(ClientError, match="Throttling"):
        if_exists(_raise("Throttling"), "reading a role")


@pytest.mark.parametrize("service,operation,code,read", [
    ("iam", "get_role", "AccessDenied", iam.roles_frame),
    ("lambda", "get_function", "AccessDeniedException", functions.functions_frame),
    ("lambda", "get_policy", "AccessDeniedException",
     lambda lab: schedule.events_permission(lab, "arn:aws:events:us-east-1:123456789012:rule/r")),
    ("rds", "describe_db_subnet_groups", "AccessDenied", network.db_subnet_group_frame),
])
def test_access_denied_is_an_error_not_an_absent_resource(service, operation, code, read):
    lab = StubbedLab(service)
    with lab.stub:
        lab.stub.add_client_error(operation, service_error_code=code, service_message=DENIED_MESSAGE,
                                  http_status_code=403)
        with pytest.raises(AccessDenied, match="not authorized") as caught:
            read(lab)
    assert "How to fix" in str(caught.value)


def test_a_gone_resource_is_absent_in_the_tables():
    lab = StubbedLab("iam")
    with lab.stub:
        for _ in iam.MANAGED:
            lab.stub.add_client_error("get_role", service_error_code="NoSuchEntity", http_status_code=404)
        assert iam.roles_frame(lab).empty


def test_a_check_fails_only_on_expected_errors():
    assert checks._safe(_raise("NoSuchBucket", "HeadBucket"), "default") == "default"
    assert checks._safe(_raise("NoSuchPublicAccessBlockConfiguration"), {}) == {}

    def not_run():
        raise StepError(4, "the database instance does not exist")

    def refused():
        raise urllib.error.URLError("connection refused")

    assert checks._safe(not_run) is None
    assert checks._safe(refused, 0) == 0


@pytest.mark.parametrize("bug", [lambda: None + "healthz", lambda: None.get("x"), lambda: {}["Configuration"]],
                         ids=["TypeError", "AttributeError", "KeyError"])
def test_a_bug_in_a_check_propagates(bug):
    with pytest.raises((TypeError, AttributeError, KeyError)):
        checks._safe(bug)


def test_a_refusal_in_a_check_propagates():
    with pytest.raises(AccessDenied):
        checks._safe(_raise("AccessDeniedException", "GetFunction"))

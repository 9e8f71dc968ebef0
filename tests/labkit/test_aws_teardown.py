"""Teardown on AWS (botocore Stubber): an interrupted RDS deletion, Lambda's network interfaces, the order."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from labkit import teardown
from tests.labkit.stub_lab import FakeLab

VPC = {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/16"}


def _db(status: str) -> dict:
    return {"DBInstances": [{"DBInstanceIdentifier": "stub-lab-db", "DBInstanceStatus": status}]}


def _rds_gone(stub: Stubber) -> None:
    stub.add_client_error("describe_db_instances", "DBInstanceNotFound", http_status_code=404)
    stub.add_client_error("describe_db_subnet_groups", "DBSubnetGroupNotFoundFault", http_status_code=404)


ALREADY_BEING_DELETED = ("InvalidDBInstanceState", "Instance stub-lab-db is already being deleted.")


@pytest.mark.parametrize("calls", [
    [("describe_db_instances", _db("deleting"))],  # a re-run: no DeleteDBInstance, which AWS would refuse
    [("describe_db_instances", _db("available")), ("delete_db_instance", ALREADY_BEING_DELETED),
     ("describe_db_instances", _db("deleting"))],  # a race: AWS's refusal means "going"
], ids=["found-deleting", "already-being-deleted"])
def test_a_deletion_already_going_is_waited_for(calls: list[tuple[str, object]]):
    rds = boto3.client("rds", region_name="us-east-1")
    with Stubber(rds) as stub:
        for operation, answer in calls:
            if isinstance(answer, tuple):
                stub.add_client_error(operation, *answer)
            else:
                stub.add_response(operation, answer)
        _rds_gone(stub)
        teardown._delete_database(FakeLab(rds=rds))
        stub.assert_no_pending_responses()


def test_other_rds_errors_are_not_swallowed():
    rds = boto3.client("rds", region_name="us-east-1")
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances", _db("available"))
        stub.add_client_error("delete_db_instance", "InvalidParameterCombination", "no")
        with pytest.raises(Exception, match="InvalidParameterCombination"):
            teardown._delete_database(FakeLab(rds=rds))


def _eni(eni_id: str, kind: str = "lambda") -> dict:
    return {"NetworkInterfaceId": eni_id, "InterfaceType": kind, "VpcId": VPC["VpcId"],
            "Description": f"AWS Lambda VPC ENI-order-validator-{eni_id}"}


def test_teardown_waits_for_lambda_to_release_its_network_interfaces():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    said: list[str] = []
    with Stubber(ec2) as stub:
        for enis in ([_eni("eni-0aaaaaaaaaaaaaaa1"), _eni("eni-0bbbbbbbbbbbbbbb2", "vpc_endpoint")],
                     [_eni("eni-0bbbbbbbbbbbbbbb2", "vpc_endpoint")]):
            stub.add_response("describe_vpcs", {"Vpcs": [VPC]})
            stub.add_response("describe_network_interfaces", {"NetworkInterfaces": enis},
                              {"Filters": [{"Name": "vpc-id", "Values": [VPC["VpcId"]]}]})
        assert teardown.wait_for_lambda_enis(FakeLab(ec2=ec2), said.append) == []
        stub.assert_no_pending_responses()
    assert "eni-0aaaaaaaaaaaaaaa1" in said[0] and "20 minutes" in said[0]


def test_lambda_interfaces_left_at_the_deadline_are_returned():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(ec2) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": [VPC]})
        stub.add_response("describe_network_interfaces", {"NetworkInterfaces": [_eni("eni-0aaaaaaaaaaaaaaa1")]})
        left = teardown.wait_for_lambda_enis(FakeLab(ec2=ec2), seconds=-1)
    assert [e["NetworkInterfaceId"] for e in left] == ["eni-0aaaaaaaaaaaaaaa1"]


def test_roles_are_deleted_after_the_network(monkeypatch):
    order: list[str] = []
    for name in ("_delete_schedule", "_delete_functions", "_delete_bucket", "_delete_instance", "_delete_database",
                 "_delete_secret", "_delete_network", "_delete_roles"):
        monkeypatch.setattr(teardown, name, lambda lab, name=name: order.append(name))
    monkeypatch.setattr(teardown, "wait_for_lambda_enis", lambda lab, say: order.append("wait_for_lambda_enis"))
    monkeypatch.setattr(teardown, "remaining_frame", lambda lab: None)
    from labkit import troubleshoot

    monkeypatch.setattr(troubleshoot, "cleanup", lambda lab: order.append("probes"))

    class Lab:
        class target:
            @staticmethod
            def require_confirmation(action, confirm):
                pass

    teardown.delete_everything(Lab(), confirm=True)
    assert order.index("_delete_functions") < order.index("wait_for_lambda_enis") < order.index("_delete_network")
    assert order[-1] == "_delete_roles"

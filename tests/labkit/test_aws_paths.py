"""The aws-only paths, without AWS: the AMI lookup (botocore Stubber), the cost table, confirmations."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from labkit import ConfigError, compute, teardown
from labkit.config import AwsTarget, LabConfig
from labkit.costs import cost_frame


class FakeLab:
    def __init__(self, ssm, ec2) -> None:
        self._clients = {"ssm": ssm, "ec2": ec2}

    def client(self, name):
        return self._clients[name]


def _clients():
    ssm = boto3.client("ssm", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    return ssm, ec2


def test_ami_comes_from_canonicals_public_parameter():
    ssm, ec2 = _clients()
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", {"Parameter": {"Name": compute.UBUNTU_PARAMETER, "Type": "String",
                                                          "Value": "ami-0abc1234def567890"}},
                          {"Name": compute.UBUNTU_PARAMETER})
        assert compute.find_ubuntu_ami(FakeLab(ssm, ec2)) == "ami-0abc1234def567890"


def test_ami_falls_back_to_the_newest_canonical_image():
    ssm, ec2 = _clients()
    with Stubber(ssm) as ssm_stub, Stubber(ec2) as ec2_stub:
        ssm_stub.add_client_error("get_parameter", "ParameterNotFound")
        ec2_stub.add_response("describe_images", {"Images": [
            {"ImageId": "ami-old", "CreationDate": "2025-01-01T00:00:00.000Z"},
            {"ImageId": "ami-new", "CreationDate": "2026-06-01T00:00:00.000Z"}]})
        assert compute.find_ubuntu_ami(FakeLab(ssm, ec2)) == "ami-new"


def test_cost_table_is_dated_and_totals():
    frame = cost_frame()
    total = frame.iloc[-1]
    assert total["resource"].startswith("total")
    assert total["USD per hour"] == pytest.approx(frame.iloc[:-1]["USD per hour"].sum(), abs=1e-3)
    assert "2026" in total["note"] and 0.03 < total["USD per hour"] < 0.2


def test_aws_target_needs_confirmation_before_deleting():
    target = AwsTarget(LabConfig(target="aws"))
    with pytest.raises(ConfigError, match="explicit confirmation"):
        target.require_confirmation("Deleting the lab", confirm=False)
    target.require_confirmation("Deleting the lab", confirm=True)


def test_teardown_on_aws_refuses_without_confirmation_and_calls_nothing():
    class Untouchable:
        class target:
            @staticmethod
            def require_confirmation(action, confirm):
                AwsTarget(LabConfig(target="aws")).require_confirmation(action, confirm)

        def client(self, name):
            raise AssertionError("no AWS call may happen before confirmation")

    with pytest.raises(ConfigError):
        teardown.delete_everything(Untouchable())


@pytest.mark.parametrize("kwargs,message", [({"target": "gcp"}, "unknown target"), ({"name": "Bad Name"}, "not valid"),
                                            ({"policies": "admin"}, "unknown policies")])
def test_bad_configuration_is_explained(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LabConfig(**kwargs)

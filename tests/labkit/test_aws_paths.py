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
    with pytest.raises(ConfigError, match="needs confirmation first"):
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


# -- one confirmation model (issue 13 item 4) ---------------------------------------------------------------
def _aws_lab(**kwargs):
    from labkit import Lab

    return Lab(target="aws", name="stub-lab", region=kwargs.pop("region", "eu-west-1"), **kwargs)


def test_an_unconfirmed_aws_lab_refuses_every_write_before_it_leaves_the_machine():
    lab = _aws_lab()
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:  # no response is queued for CreateVpc: the call must never be made
        stub.add_response("describe_vpcs", {"Vpcs": []})
        assert ec2.describe_vpcs()["Vpcs"] == []  # reads are fine
        with pytest.raises(ConfigError) as caught:
            ec2.create_vpc(CidrBlock="10.0.0.0/16")
        stub.assert_no_pending_responses()
    message = str(caught.value)
    assert "ec2 CreateVpc" in message and "region eu-west-1" in message and "USD per hour" in message
    assert "confirm = True" in message and "--yes" in message


def test_labkit_up_on_an_unconfirmed_aws_lab_creates_nothing():
    import labkit

    lab = _aws_lab()
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []})  # ensure_vpc looks first, then would create
        with pytest.raises(ConfigError, match="CreateVpc"):
            labkit.up(lab, through=1)


def test_a_confirmed_aws_lab_makes_the_call():
    lab = _aws_lab(confirm=True)
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("create_vpc", {"Vpc": {"VpcId": "vpc-0123456789abcdef0"}})
        assert ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"] == "vpc-0123456789abcdef0"


def test_teardown_confirmation_confirms_the_lab_for_its_deletes():
    lab = _aws_lab()
    lab.target.require_confirmation("Deleting the lab", True)
    ec2 = lab.client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("delete_vpc", {})
        ec2.delete_vpc(VpcId="vpc-0123456789abcdef0")


def test_labkit_run_on_aws_without_yes_stops_before_the_first_notebook(tmp_path):
    from labkit.runner import run_notebooks

    with pytest.raises(ConfigError, match="Running the notebooks"):
        run_notebooks(target="aws", region="eu-west-1", output_dir=tmp_path, show_progress=False)
    assert not list(tmp_path.iterdir())


# -- the region chain (issue 13 item 6) ---------------------------------------------------------------------
def test_aws_region_follows_the_standard_chain(monkeypatch, tmp_path):
    from labkit.config import config_from_environment

    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-southeast-2\n")
    for var in ("LABKIT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert config_from_environment(target="aws").region == "ap-southeast-2"  # the profile's region
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert config_from_environment(target="aws").region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert config_from_environment(target="aws").region == "eu-west-1"
    monkeypatch.setenv("LABKIT_REGION", "us-west-2")
    assert config_from_environment(target="aws").region == "us-west-2"
    assert config_from_environment(target="aws", region="sa-east-1").region == "sa-east-1"
    assert config_from_environment(target="local").region == "us-west-2"


def test_aws_without_any_region_is_explained(monkeypatch, tmp_path):
    from labkit.config import config_from_environment

    for var in ("LABKIT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="no AWS region is configured"):
        config_from_environment(target="aws")
    assert config_from_environment(target="local").region == "us-east-1"


def test_the_lab_shows_its_region_and_confirmation():
    assert repr(_aws_lab(region="eu-north-1")) == \
        "Lab(target='aws', name='stub-lab', region='eu-north-1', confirmed=False)"


# -- the runner (issue 13 item 5) ---------------------------------------------------------------------------
def test_run_has_region_lab_yes_and_aws_cell_limits():
    from labkit.cli import build_parser
    from labkit.config import target_class

    args = build_parser().parse_args(["run", "--target", "aws", "--region", "eu-west-1", "--lab", "my-lab", "--yes"])
    assert (args.region, args.lab, args.yes) == ("eu-west-1", "my-lab", True)
    assert target_class("aws").cell_timeout >= 3600  # an RDS instance alone takes 10-20 minutes; teardown longer


def test_cost_table_prices_the_gp2_root_volume_and_warns_of_t3_unlimited():
    frame = cost_frame().set_index("resource")
    assert "/ebs-gp2/" in compute.UBUNTU_PARAMETER  # the image's root volume type
    assert frame.loc["EBS gp2 root volume, 8 GB", "USD per hour"] == pytest.approx(8 * 0.10 / 730, abs=1e-4)
    assert "unlimited" in frame.loc["EC2 t3.micro instance", "note"]


# -- CloudWatch Logs (issue 13 item 13) ---------------------------------------------------------------------
class _LogsLab:
    class target:
        poll_seconds = 0.01

    def __init__(self, logs) -> None:
        self._logs = logs

    def client(self, name):
        return self._logs


def _event(message: str, ms: int) -> dict:
    return {"logStreamName": "2026/11/25/[$LATEST]abc", "timestamp": ms, "message": message, "ingestionTime": ms,
            "eventId": str(ms)}


def test_logs_read_every_page():
    from labkit import functions

    logs = boto3.client("logs", region_name="us-east-1")
    group = {"logGroupName": "/aws/lambda/daily-delta-processor"}
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": [], "nextToken": "page-2"}, group)
        stub.add_response("filter_log_events", {"events": [_event("REPORT RequestId: 1 Duration: 5 ms", 1000)]},
                          {**group, "nextToken": "page-2"})
        frame = functions.logs_frame(_LogsLab(logs), "daily-delta-processor", contains="REPORT RequestId")
    assert list(frame["message"]) == ["REPORT RequestId: 1 Duration: 5 ms"]


def test_logs_wait_for_ingestion():
    from labkit import functions

    logs = boto3.client("logs", region_name="us-east-1")
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": []})
        stub.add_response("filter_log_events", {"events": [_event("START RequestId: 1", 1000)]})
        stub.add_response("filter_log_events", {"events": [_event("START RequestId: 1", 1000),
                                                           _event("REPORT RequestId: 1", 2000)]})
        frame = functions.logs_frame(_LogsLab(logs), "f", contains="REPORT", wait_seconds=30)
        stub.assert_no_pending_responses()
    assert len(frame) == 1


# -- Availability Zones (issue 13 item 9) -------------------------------------------------------------------
class _ZoneLab:
    name = "stub-lab"
    region = "us-east-1"

    def __init__(self, ec2, rds) -> None:
        self._clients = {"ec2": ec2, "rds": rds}

    def client(self, name):
        return self._clients[name]


def test_zones_are_standard_zones_offering_both_instance_types():
    from labkit import network

    ec2, rds = boto3.client("ec2", region_name="us-east-1"), boto3.client("rds", region_name="us-east-1")
    zone = lambda name, **kw: {"ZoneName": name, "State": "available", "ZoneType": "availability-zone",  # noqa: E731
                               "OptInStatus": "opt-in-not-required", **kw}
    with Stubber(ec2) as ec2_stub, Stubber(rds) as rds_stub:
        ec2_stub.add_response("describe_availability_zones", {"AvailabilityZones": [
            zone("us-east-1a"), zone("us-east-1b"), zone("us-east-1c"), zone("us-east-1e"),
            zone("us-east-1-bos-1a", OptInStatus="opted-in")]},
            {"Filters": [{"Name": "state", "Values": ["available"]},
                         {"Name": "zone-type", "Values": ["availability-zone"]}]})
        ec2_stub.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": [
            {"InstanceType": "t3.micro", "LocationType": "availability-zone", "Location": z}
            for z in ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1-bos-1a")]},
            {"LocationType": "availability-zone", "Filters": [{"Name": "instance-type", "Values": ["t3.micro"]}]})
        rds_stub.add_response("describe_db_engine_versions", {"DBEngineVersions": [
            {"Engine": "mysql", "EngineVersion": "8.4.6", "DBParameterGroupFamily": "mysql8.4"}]},
            {"Engine": "mysql", "DBParameterGroupFamily": "mysql8.4", "DefaultOnly": True})
        rds_stub.add_response("describe_orderable_db_instance_options", {"OrderableDBInstanceOptions": [
            {"Engine": "mysql", "EngineVersion": "8.4.6", "DBInstanceClass": "db.t3.micro",
             "AvailabilityZones": [{"Name": z} for z in ("us-east-1b", "us-east-1c", "us-east-1e")]}]},
            {"Engine": "mysql", "EngineVersion": "8.4.6", "DBInstanceClass": "db.t3.micro", "Vpc": True})
        assert network.choose_zones(_ZoneLab(ec2, rds)) == ["us-east-1b", "us-east-1c"]


def test_too_few_zones_is_explained():
    from labkit import StepError, network

    ec2, rds = boto3.client("ec2", region_name="us-east-1"), boto3.client("rds", region_name="us-east-1")
    with Stubber(ec2) as ec2_stub, Stubber(rds) as rds_stub:
        ec2_stub.add_response("describe_availability_zones", {"AvailabilityZones": [
            {"ZoneName": "us-east-1a", "ZoneType": "availability-zone", "OptInStatus": "opt-in-not-required"}]})
        ec2_stub.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": [
            {"InstanceType": "t3.micro", "LocationType": "availability-zone", "Location": "us-east-1a"}]})
        rds_stub.add_response("describe_db_engine_versions", {"DBEngineVersions": [{"EngineVersion": "8.4.6"}]})
        rds_stub.add_response("describe_orderable_db_instance_options", {"OrderableDBInstanceOptions": [
            {"AvailabilityZones": [{"Name": "us-east-1a"}]}]})
        with pytest.raises(StepError, match="needs 2") as caught:
            network.choose_zones(_ZoneLab(ec2, rds))
    assert "another region" in str(caught.value)


# -- issue 25 item 10: the free tier by account date, RDS's surplus credits ----------------------------------
def test_cost_notes_say_which_free_tier_and_both_surplus_credit_prices():
    frame = cost_frame().set_index("resource")
    for resource in ("EC2 t3.micro instance", "RDS db.t3.micro MySQL, single-AZ"):
        note = frame.loc[resource, "note"]
        assert "since 2025-07-15" in note and "credits" in note and "12 months" in note  # both kinds of account
    assert "$0.05 per vCPU-hour" in frame.loc["EC2 t3.micro instance", "note"]
    assert "$0.075 per vCPU-hour" in frame.loc["RDS db.t3.micro MySQL, single-AZ", "note"]

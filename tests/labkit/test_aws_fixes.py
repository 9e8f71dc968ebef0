"""Defects of the aws target (issue 13) that the local cloud reproduces: each breaks the thing on purpose."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from labkit import iam, lookups, secrets, teardown
from labkit.steps import run_step


def test_step_4_recovers_a_secret_scheduled_for_deletion(provisioned):
    lab = provisioned.lab
    sm = lab.client("secretsmanager")
    password = secrets.read_secret(lab)["password"]
    sm.delete_secret(SecretId=iam.SECRET_NAME, RecoveryWindowInDays=7)
    try:
        with pytest.raises(ClientError) as caught:  # AWS's own symptom
            sm.get_secret_value(SecretId=iam.SECRET_NAME)
        assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
        assert secrets.read_secret(lab) is None
        run_step(lab, 4)
        assert secrets.read_secret(lab)["password"] == password  # recovered, not replaced
        assert not secrets.pending_deletion(lab)
    finally:
        if secrets.pending_deletion(lab):
            sm.restore_secret(SecretId=iam.SECRET_NAME)


def test_remaining_frame_lists_network_interfaces_left_in_the_vpc(provisioned):
    lab = provisioned.lab
    ec2 = lab.client("ec2")
    subnet = sorted(lookups.subnet_ids(lab, public=False))[0]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="left behind")["NetworkInterface"]
    try:
        left = teardown.remaining_frame(lab)
        rows = left[left["id"].str.startswith(eni["NetworkInterfaceId"])]
        assert len(rows) == 1 and rows.iloc[0]["kind"].startswith("network interface")
    finally:
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])


def test_rds_catalogue_answers_as_aws(cloud):
    rds, ec2 = cloud.client("rds"), cloud.client("ec2")
    default = rds.describe_db_engine_versions(Engine="mysql", DBParameterGroupFamily="mysql8.4",
                                              DefaultOnly=True)["DBEngineVersions"]
    assert len(default) == 1 and default[0]["EngineVersion"].startswith("8.4.")
    options = rds.describe_orderable_db_instance_options(Engine="mysql", EngineVersion=default[0]["EngineVersion"],
                                                         DBInstanceClass="db.t3.micro")["OrderableDBInstanceOptions"]
    zones = {z["Name"] for o in options for z in o["AvailabilityZones"]}
    offered = {o["Location"] for o in ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}])["InstanceTypeOfferings"]}
    assert zones == offered and "us-east-1e" not in zones  # as on AWS: no t3 capacity in us-east-1e


def test_the_lab_runs_the_pinned_engine_in_zones_that_offer_it(provisioned):
    from labkit import database, network

    lab = provisioned.lab
    db = database.describe_db_instance(lab)
    assert db["EngineVersion"] == database.engine_version(lab) and db["EngineVersion"].startswith("8.4.")
    zones = set(network.network_frame(lab).query("kind == 'subnet'")["detail"].str.split().str[1])
    assert zones == set(network.choose_zones(lab))

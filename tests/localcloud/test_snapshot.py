"""labkit.snapshot.shared_reads: within a page (the lab report), a read asked twice is sent once; never a
command's progress, never outside the block."""
from __future__ import annotations

from labkit import Lab
from labkit.snapshot import shared_reads


def _sent(lab: Lab, operation: str) -> int:
    return sum(1 for call in lab.calls.calls if call.operation == operation)


def test_a_repeated_read_is_answered_once_within_the_block_and_only_a_read(cloud):
    lab = Lab(target="local", name="snapshot-lab", cloud_port=int(cloud.endpoint.rsplit(":", 1)[1]), home=cloud.home)
    ec2 = lab.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    try:
        with shared_reads(lab):
            first = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
            first[0]["State"] = "changed by the caller"  # a caller's change is not the next caller's answer
            second = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
            other = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"]
        assert _sent(lab, "DescribeVpcs") == 2  # the repeated read was not sent; other parameters were
        assert second[0]["State"] == "available" and second[0]["VpcId"] == other[0]["VpcId"] == vpc
        ec2.describe_vpcs(VpcIds=[vpc])
        assert _sent(lab, "DescribeVpcs") == 3  # outside the block every read is sent again
        s3 = lab.client("s3")
        s3.create_bucket(Bucket="snapshot-lab-bucket")
        s3.put_object(Bucket="snapshot-lab-bucket", Key="a.csv", Body=b"a,b\n")
        with shared_reads(lab):  # a command's progress, a streamed body and every change are always sent
            for _ in range(2):
                lab.client("ssm").list_commands()
                assert s3.get_object(Bucket="snapshot-lab-bucket", Key="a.csv")["Body"].read() == b"a,b\n"
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "snapshot", "Value": "1"}])
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "snapshot", "Value": "1"}])
        assert _sent(lab, "ListCommands") == _sent(lab, "GetObject") == _sent(lab, "CreateTags") == 2
    finally:
        ec2.delete_vpc(VpcId=vpc)

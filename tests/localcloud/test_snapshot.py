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


def test_a_read_whose_answer_botocore_decodes_in_place_is_sent_each_time(cloud):
    """IAM's policy documents are decoded from quoted JSON by a botocore handler after each call: a shared
    answer was decoded twice (AttributeError: 'dict' object has no attribute 'split'), so it is not shared."""
    lab = Lab(target="local", name="snapshot-lab", cloud_port=int(cloud.endpoint.rsplit(":", 1)[1]), home=cloud.home)
    iam = lab.client("iam")
    trust = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
             '"lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
    iam.create_role(RoleName="snapshot-role", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="snapshot-role", PolicyName="inline", PolicyDocument='{"Version": "2012-10-17", '
                        '"Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]}')
    try:
        with shared_reads(lab):
            for _ in range(2):
                role = iam.get_role(RoleName="snapshot-role")["Role"]
                assert role["AssumeRolePolicyDocument"]["Version"] == "2012-10-17"
                assert iam.get_role_policy(RoleName="snapshot-role", PolicyName="inline")["PolicyDocument"]["Statement"]
            names = [iam.list_role_policies(RoleName="snapshot-role")["PolicyNames"] for _ in range(2)]
        assert names == [["inline"], ["inline"]]
        assert _sent(lab, "GetRole") == _sent(lab, "GetRolePolicy") == 2 and _sent(lab, "ListRolePolicies") == 1
    finally:
        iam.delete_role_policy(RoleName="snapshot-role", PolicyName="inline")
        iam.delete_role(RoleName="snapshot-role")

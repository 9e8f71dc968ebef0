"""Deleting what is in use is refused as AWS refuses it, and the refused delete changes nothing."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.helpers import make_zip
from tests.helpers.lambdas import LAMBDA_TRUST
from tests.helpers.network import VPC_ACCESS


def _refused(call, code: str, status: int = 400) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error, meta = caught.value.response["Error"], caught.value.response["ResponseMetadata"]
    assert (error["Code"], meta["HTTPStatusCode"]) == (code, status), caught.value.response
    return error["Message"]


@pytest.fixture()
def vpc(cloud):
    """A VPC with two subnets, a group, an internet gateway and a route table of its own."""
    ec2 = cloud.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    group = ec2.create_security_group(GroupName="deps-group", Description="deps", VpcId=vpc_id)["GroupId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    return {"vpc": vpc_id, "subnets": subnets, "group": group, "igw": igw}


def _groups(ec2, vpc_id: str) -> set[str]:
    return {g["GroupId"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]}


def test_a_group_an_instance_uses_or_a_rule_names_stays(cloud, vpc):
    ec2 = cloud.client("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=vpc["subnets"][0], SecurityGroupIds=[vpc["group"]])["Instances"][0]
    assert _refused(lambda: ec2.delete_security_group(GroupId=vpc["group"]), "DependencyViolation") == \
        f"resource {vpc['group']} has a dependent object"
    assert _refused(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][0]), "DependencyViolation") == \
        f"The subnet '{vpc['subnets'][0]}' has dependencies and cannot be deleted."
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert _refused(lambda: ec2.delete_network_interface(NetworkInterfaceId=eni), "InvalidParameterValue") == \
        f"Network interface '{eni}' is currently in use."
    assert vpc["group"] in _groups(ec2, vpc["vpc"])
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig={"Delay": 1})

    other = ec2.create_security_group(GroupName="deps-other", Description="x", VpcId=vpc["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=other, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": vpc["group"]}]}])
    assert _refused(lambda: ec2.delete_security_group(GroupId=vpc["group"]), "DependencyViolation") == \
        f"resource {vpc['group']} has a dependent object"
    ec2.delete_security_group(GroupId=other)
    ec2.delete_security_group(GroupId=vpc["group"])  # nothing depends on it any more
    default = next(g["GroupId"] for g in ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc["vpc"]]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"])
    assert _refused(lambda: ec2.delete_security_group(GroupId=default), "CannotDelete") == \
        f'the specified group: "{default}" name: "default" cannot be deleted by a user'


def _zip() -> bytes:
    return make_zip({"lambda_function.py": "def lambda_handler(event, context):\n    return 1\n"})


def test_a_function_in_the_vpc_holds_its_group_and_subnets(cloud, vpc):
    ec2, lam, iam = cloud.client("ec2"), cloud.client("lambda"), cloud.client("iam")
    role = iam.create_role(RoleName="deps-vpc-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.attach_role_policy(RoleName="deps-vpc-role", PolicyArn=VPC_ACCESS)
    lam.create_function(FunctionName="deps-in-vpc", Runtime="python3.11", Role=role, Code={"ZipFile": _zip()},
                        Handler="lambda_function.lambda_handler",
                        VpcConfig={"SubnetIds": vpc["subnets"], "SecurityGroupIds": [vpc["group"]]})
    _refused(lambda: ec2.delete_security_group(GroupId=vpc["group"]), "DependencyViolation")
    _refused(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][1]), "DependencyViolation")
    lam.delete_function(FunctionName="deps-in-vpc")
    ec2.delete_security_group(GroupId=vpc["group"])
    ec2.delete_subnet(SubnetId=vpc["subnets"][1])
    iam.detach_role_policy(RoleName="deps-vpc-role", PolicyArn=VPC_ACCESS)
    iam.delete_role(RoleName="deps-vpc-role")


def test_an_interface_endpoint_holds_its_group(cloud, vpc):
    ec2 = cloud.client("ec2")
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc["vpc"], ServiceName="com.amazonaws.us-east-1.secretsmanager",
                                       VpcEndpointType="Interface", SubnetIds=[vpc["subnets"][0]], PrivateDnsEnabled=False,
                                       SecurityGroupIds=[vpc["group"]])["VpcEndpoint"]["VpcEndpointId"]
    _refused(lambda: ec2.delete_security_group(GroupId=vpc["group"]), "DependencyViolation")
    _refused(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][0]), "DependencyViolation")
    assert _refused(lambda: ec2.delete_vpc(VpcId=vpc["vpc"]), "DependencyViolation") == \
        f"The vpc '{vpc['vpc']}' has dependencies and cannot be deleted."
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    ec2.delete_security_group(GroupId=vpc["group"])


def test_the_internet_gateway_stays_while_addresses_are_public(cloud, vpc):
    ec2 = cloud.client("ec2")
    ec2.modify_subnet_attribute(SubnetId=vpc["subnets"][0], MapPublicIpOnLaunch={"Value": True})
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=vpc["subnets"][0])["Instances"][0]["InstanceId"]
    assert _refused(lambda: ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"]),
                    "DependencyViolation") == (f"Network {vpc['vpc']} has some mapped public address(es). Please unmap "
                                               "those public address(es) before detaching the gateway.")
    assert _refused(lambda: ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"]), "DependencyViolation") == \
        f"The internetGateway '{vpc['igw']}' has dependencies and cannot be deleted."
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=instance)
    assert _refused(lambda: ec2.release_address(AllocationId=allocation), "InvalidIPAddress.InUse") == \
        "Address is in use."
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig={"Delay": 1})
    association = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0].get("AssociationId")
    if association:  # terminating the instance may have disassociated it already
        ec2.disassociate_address(AssociationId=association)
    ec2.release_address(AllocationId=allocation)
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"])


def test_a_vpc_is_deleted_only_once_empty_and_takes_its_defaults(cloud, vpc):
    ec2 = cloud.client("ec2")
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    assert _refused(lambda: ec2.delete_route_table(RouteTableId=main["RouteTableId"]), "DependencyViolation") == \
        f"The routeTable '{main['RouteTableId']}' has dependencies and cannot be deleted."
    acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]},
                                             {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]["NetworkAclId"]
    assert _refused(lambda: ec2.delete_network_acl(NetworkAclId=acl), "InvalidParameterValue") == \
        f"cannot delete default network ACL {acl}"
    for subnet in vpc["subnets"]:
        ec2.delete_subnet(SubnetId=subnet)
    _refused(lambda: ec2.delete_vpc(VpcId=vpc["vpc"]), "DependencyViolation")  # the group and the gateway
    ec2.delete_security_group(GroupId=vpc["group"])
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    ec2.delete_vpc(VpcId=vpc["vpc"])  # a detached gateway is the account's, no longer the VPC's
    ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"])
    assert not ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]}])["NetworkAcls"]


def test_a_managed_policy_attached_or_with_versions_stays(cloud):
    iam = cloud.client("iam")
    document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                                   "Resource": "*"}]})
    arn = iam.create_policy(PolicyName="deps-policy", PolicyDocument=document)["Policy"]["Arn"]
    iam.create_role(RoleName="deps-policy-role", AssumeRolePolicyDocument=LAMBDA_TRUST)
    iam.attach_role_policy(RoleName="deps-policy-role", PolicyArn=arn)
    assert _refused(lambda: iam.delete_policy(PolicyArn=arn), "DeleteConflict", 409) == \
        "Cannot delete a policy attached to entities."
    iam.detach_role_policy(RoleName="deps-policy-role", PolicyArn=arn)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    assert _refused(lambda: iam.delete_policy(PolicyArn=arn), "DeleteConflict", 409) == (
        "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. "
        "The default version is deleted with the policy.")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)
    iam.delete_role(RoleName="deps-policy-role")


def test_a_database_holds_its_subnet_group_and_its_group(cloud, vpc):
    ec2, rds = cloud.client("ec2"), cloud.client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName="deps-dbs", DBSubnetGroupDescription="x", SubnetIds=vpc["subnets"])
    rds.create_db_instance(DBInstanceIdentifier="deps-db", Engine="mysql", DBInstanceClass="db.t3.micro",
                           MasterUsername="admin", MasterUserPassword="Deps-pass-1", AllocatedStorage=20,
                           DBSubnetGroupName="deps-dbs", VpcSecurityGroupIds=[vpc["group"]],
                           AvailabilityZone="us-east-1b")
    try:
        assert _refused(lambda: rds.delete_db_subnet_group(DBSubnetGroupName="deps-dbs"),
                        "InvalidDBSubnetGroupStateFault") == ("Cannot delete the subnet group 'deps-dbs' because at "
                                                              "least one database instance: deps-db is still using it.")
        _refused(lambda: ec2.delete_security_group(GroupId=vpc["group"]), "DependencyViolation")
        _refused(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][1]), "DependencyViolation")  # its zone's subnet
        ec2.delete_subnet(SubnetId=vpc["subnets"][0])  # only listed in the group: AWS lets it go
    finally:
        rds.delete_db_instance(DBInstanceIdentifier="deps-db", SkipFinalSnapshot=True)
    rds.delete_db_subnet_group(DBSubnetGroupName="deps-dbs")
    ec2.delete_security_group(GroupId=vpc["group"])

"""Network ACLs through plain boto3 (issue 26, points 5 and 6): EC2's records and refusals as AWS answers them, and
the stateless subnet firewall enforced on a function's connections, with the S3 gateway endpoint held to the
group's egress.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.helpers.network import ask, lab_db, lab_vpc, probe_function

VPC_CIDR = "10.64.0.0/16"


@pytest.fixture(scope="module")
def net(cloud):
    return lab_vpc(cloud.client("ec2"), "10.64")


@pytest.fixture(scope="module")
def db(cloud, net):
    endpoint = lab_db(cloud, net, "nacl-db")
    yield endpoint
    cloud.client("rds").delete_db_instance(DBInstanceIdentifier="nacl-db", SkipFinalSnapshot=True)


def _refused(call, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def _entries(ec2, acl_id: str) -> list[tuple]:
    acl = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]
    return sorted((e["Egress"], e["RuleNumber"], e["RuleAction"], e["Protocol"], e.get("CidrBlock"),
                   (e.get("PortRange") or {}).get("From"), (e.get("PortRange") or {}).get("To")) for e in acl["Entries"])


def _associate(ec2, subnets: list[str], acl_id: str) -> list[str]:
    """Move ``subnets`` to ``acl_id`` (ReplaceNetworkAclAssociation: the only way); the ACLs they were on."""
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])["NetworkAcls"]
    before = []
    for subnet in subnets:
        acl, association = next((a["NetworkAclId"], s["NetworkAclAssociationId"]) for a in acls
                                for s in a["Associations"] if s["SubnetId"] == subnet)
        before.append(acl)
        ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl_id)
    return before


def _entry(ec2, acl_id: str, number: int, egress: bool, ports: tuple[int, int] | None, cidr: str = VPC_CIDR,
           protocol: str = "6", action: str = "allow") -> None:
    extra = {"PortRange": {"From": ports[0], "To": ports[1]}} if ports else {}
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol=protocol, RuleAction=action,
                                 Egress=egress, CidrBlock=cidr, **extra)


def test_a_new_custom_acl_denies_all_with_the_star_rules_and_the_default_allows_all(cloud, net):
    ec2 = cloud.client("ec2")
    default = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]},
                                                 {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    assert _entries(ec2, default["NetworkAclId"]) == [
        (False, 100, "allow", "-1", "0.0.0.0/0", None, None), (False, 32767, "deny", "-1", "0.0.0.0/0", None, None),
        (True, 100, "allow", "-1", "0.0.0.0/0", None, None), (True, 32767, "deny", "-1", "0.0.0.0/0", None, None)]
    acl = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]
    try:
        assert sorted((e["Egress"], e["RuleNumber"], e["RuleAction"]) for e in acl["Entries"]) == [
            (False, 32767, "deny"), (True, 32767, "deny")]
        assert _entries(ec2, acl["NetworkAclId"]) == [(False, 32767, "deny", "-1", "0.0.0.0/0", None, None),
                                                      (True, 32767, "deny", "-1", "0.0.0.0/0", None, None)]
    finally:
        ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])


def test_entries_are_refused_as_ec2_refuses_them(cloud, net):
    ec2 = cloud.client("ec2")
    acl = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    base = {"NetworkAclId": acl, "RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": False,
            "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 22, "To": 22}}
    create = ec2.create_network_acl_entry
    try:
        assert _refused(create, **{**base, "Protocol": "tcp"}) == (
            "InvalidParameterValue", 400, "Invalid value 'tcp' for IP protocol. Unknown protocol.")
        for number in (0, 32767, 40000):
            assert _refused(create, **{**base, "RuleNumber": number}) == (
                "InvalidParameterValue", 400, f"Value ({number}) for parameter ruleNumber is invalid. Rule numbers "
                                              "must be between 1 and 32766.")
        assert _refused(create, **{**base, "RuleAction": "permit"}) == (
            "InvalidParameterValue", 400, "Value (permit) for parameter ruleAction is invalid. Expected: 'allow' or "
                                          "'deny'.")
        assert _refused(create, **{k: v for k, v in base.items() if k != "PortRange"}) == (
            "MissingParameter", 400, "The request must contain the parameter portRange.from")
        assert _refused(create, **{k: v for k, v in {**base, "Protocol": "1"}.items() if k != "PortRange"}) == (
            "MissingParameter", 400, "The request must contain the parameter icmpTypeCode.type")
        assert _refused(create, **{**base, "CidrBlock": "10.0.0.0/33"}) == (
            "InvalidParameterValue", 400, "Value (10.0.0.0/33) for parameter cidrBlock is invalid. This is not a valid "
                                          "CIDR block.")
        assert _entries(ec2, acl) == [(False, 32767, "deny", "-1", "0.0.0.0/0", None, None),
                                      (True, 32767, "deny", "-1", "0.0.0.0/0", None, None)]  # nothing stored
        create(**{**base, "CidrBlock": "100.68.0.18/18"})  # kept in its canonical form
        assert (False, 100, "allow", "6", "100.68.0.0/18", 22, 22) in _entries(ec2, acl)
        assert _refused(create, **base) == ("NetworkAclEntryAlreadyExists", 400,
                                            "The network acl entry identified by 100 already exists.")
        delete = ec2.delete_network_acl_entry
        assert _refused(delete, NetworkAclId=acl, RuleNumber=120, Egress=False) == (
            "InvalidNetworkAclEntry.NotFound", 400, "no ingress entry with number 120")
        assert _refused(delete, NetworkAclId=acl, RuleNumber=100, Egress=True) == (
            "InvalidNetworkAclEntry.NotFound", 400, "no egress entry with number 100")
        assert _refused(delete, NetworkAclId=acl, RuleNumber=32767, Egress=False) == (
            "InvalidParameterValue", 400, "Value (32767) for parameter ruleNumber is invalid. Rule numbers must be "
                                          "between 1 and 32766.")
        assert _refused(ec2.replace_network_acl_entry, **{**base, "RuleNumber": 130}) == (
            "InvalidNetworkAclEntry.NotFound", 400, "no ingress entry with number 130")
        assert _refused(ec2.replace_network_acl_association, AssociationId="aclassoc-0123456789abcdef0",
                        NetworkAclId=acl) == ("InvalidAssociationID.NotFound", 400,
                                              "The association ID 'aclassoc-0123456789abcdef0' does not exist")
        delete(NetworkAclId=acl, RuleNumber=100, Egress=False)
        assert len(_entries(ec2, acl)) == 2
    finally:
        ec2.delete_network_acl(NetworkAclId=acl)


def test_describe_prefix_lists_shows_the_s3_ranges(cloud):
    lists = cloud.client("ec2").describe_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    assert len(lists) == 1 and lists[0]["PrefixListId"].startswith("pl-") and lists[0]["Cidrs"]


def test_the_return_traffic_needs_its_own_rule(cloud, net, db):
    """A NACL on the private subnets that lets MySQL and HTTPS in (and the replies to the subnets' own clients) but
    only MySQL and HTTPS out: the database's replies to the function's ephemeral ports are dropped, the connection
    times out, as on AWS; an outbound rule for 1024-65535 fixes it. The default NACL lets everything through."""
    ec2 = cloud.client("ec2")
    fn = probe_function(cloud, "nacl-return", net)
    target, key = [[db["Address"], db["Port"]]], f"{db['Address']}:{db['Port']}"
    assert ask(cloud, fn, tcp=target, api=["secretsmanager"]) == {key: "connected", "secretsmanager": "ok"}
    private = [net["subnet"]["private-a"], net["subnet"]["private-b"]]
    acl = ec2.create_network_acl(VpcId=net["vpc"])["NetworkAcl"]["NetworkAclId"]
    before = _associate(ec2, private, acl)
    try:
        assert ask(cloud, fn, tcp=target) == {key: "timed out"}  # a new custom ACL denies all
        for number, egress, ports, cidr in ((100, False, (3306, 3306), VPC_CIDR), (110, False, (443, 443), VPC_CIDR),
                                            (120, False, (1024, 65535), "0.0.0.0/0"),
                                            (100, True, (3306, 3306), VPC_CIDR), (110, True, (443, 443), "0.0.0.0/0")):
            _entry(ec2, acl, number, egress, ports, cidr)
        assert ask(cloud, fn, tcp=target, api=["secretsmanager"]) == {key: "timed out",
                                                                       "secretsmanager": "ConnectTimeoutError"}
        _entry(ec2, acl, 120, True, (1024, 65535))  # the replies, to the clients' ephemeral ports
        assert ask(cloud, fn, tcp=target, api=["secretsmanager"]) == {key: "connected", "secretsmanager": "ok"}
        # First match wins: a deny numbered before the allow drops MySQL again.
        _entry(ec2, acl, 90, True, (3306, 3306), action="deny")
        assert ask(cloud, fn, tcp=target) == {key: "timed out"}
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Egress=True)
        assert ask(cloud, fn, tcp=target) == {key: "connected"}
    finally:
        _associate(ec2, private, before[0])
        ec2.delete_network_acl(NetworkAclId=acl)
    assert ask(cloud, fn, tcp=target) == {key: "connected"}


def test_s3_through_the_gateway_endpoint_needs_the_groups_egress(cloud, net):
    """With lambda-sg's egress revoked, S3 through the gateway endpoint times out like every other path; an egress
    rule naming the region's S3 prefix list lets it through again (and only S3)."""
    ec2 = cloud.client("ec2")
    fn = probe_function(cloud, "nacl-s3-egress", net)
    gateway = ec2.create_vpc_endpoint(VpcId=net["vpc"], VpcEndpointType="Gateway",
                                      ServiceName="com.amazonaws.us-east-1.s3",
                                      RouteTableIds=[net["private_rt"]])["VpcEndpoint"]["VpcEndpointId"]
    everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    s3_list = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [
        "com.amazonaws.us-east-1.s3"]}])["PrefixLists"][0]["PrefixListId"]
    to_s3 = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": s3_list}]}]
    try:
        assert ask(cloud, fn, api=["s3"]) == {"s3": "ok"}
        ec2.revoke_security_group_egress(GroupId=net["sg"]["lambda"], IpPermissions=everything)
        try:
            assert ask(cloud, fn, api=["s3", "secretsmanager"]) == {"s3": "ConnectTimeoutError",
                                                                     "secretsmanager": "ConnectTimeoutError"}
            ec2.authorize_security_group_egress(GroupId=net["sg"]["lambda"], IpPermissions=to_s3)
            assert ask(cloud, fn, api=["s3", "secretsmanager"]) == {"s3": "ok", "secretsmanager": "ConnectTimeoutError"}
            ec2.revoke_security_group_egress(GroupId=net["sg"]["lambda"], IpPermissions=to_s3)
        finally:
            ec2.authorize_security_group_egress(GroupId=net["sg"]["lambda"], IpPermissions=everything)
        assert ask(cloud, fn, api=["s3", "secretsmanager"]) == {"s3": "ok", "secretsmanager": "ok"}
    finally:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[gateway])


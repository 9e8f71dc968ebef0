"""The reachability rules on describe-shaped records: a rule for an address /32 matches the source at that
address only (your computer, or an instance leaving its VPC at its public IP or its NAT gateway's)."""
from __future__ import annotations

import pytest

from labkit import reachability as rx

VPC = "vpc-1"
YOU = "203.0.113.7"


def _rule(port: int, cidr: str | None = None, group: str | None = None, protocol: str = "tcp") -> dict:
    perm = {"IpProtocol": protocol, "FromPort": port, "ToPort": port, "IpRanges": [], "UserIdGroupPairs": []}
    if cidr:
        perm["IpRanges"] = [{"CidrIp": cidr}]
    if group:
        perm["UserIdGroupPairs"] = [{"GroupId": group}]
    return perm


def _group(group_id: str, *inbound: dict) -> dict:
    return {"GroupId": group_id, "GroupName": group_id, "VpcId": VPC, "IpPermissions": list(inbound),
            "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}


def _network(*groups: dict) -> rx.Network:
    return rx.Network(
        security_groups=list(groups),
        subnets=[{"SubnetId": "subnet-pub", "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
                 {"SubnetId": "subnet-priv", "VpcId": VPC, "CidrBlock": "10.0.11.0/24"}],
        internet_gateways=[{"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": VPC, "State": "available"}]}],
        nat_gateways=[{"NatGatewayId": "nat-1", "SubnetId": "subnet-pub", "State": "available",
                       "NatGatewayAddresses": [{"PublicIp": "198.51.100.20"}]}],
        route_tables=[
            {"RouteTableId": "rtb-pub", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-pub"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]},
            {"RouteTableId": "rtb-priv", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-priv"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]}])


def _app(group: str = "sg-app", public_ip: str = "198.51.100.10") -> rx.Node:
    return rx.Node("app", "instance", VPC, ("subnet-pub",), (group,), "10.0.1.10", True, public_ip)


@pytest.mark.parametrize("cidr,allowed", [(f"{YOU}/32", True), ("203.0.113.0/24", True), ("0.0.0.0/0", True),
                                          ("203.0.113.8/32", False), ("10.0.0.0/16", False)])
def test_a_rule_matches_your_computer_when_it_holds_your_address(cidr, allowed):
    net = _network(_group("sg-app", _rule(5000, cidr)))
    verdict = rx.connect(net, rx.your_computer(YOU), _app(), 5000)
    assert verdict.allowed is allowed, verdict
    if allowed:
        assert verdict.reason.startswith(f"sg-app allows tcp 5000 from {cidr}; subnet-pub routes 0.0.0.0/0 to igw-1")
    else:
        assert verdict.reason == f"sg-app: no inbound rule for tcp 5000 from your computer ({YOU})"


def test_an_unknown_address_is_sure_to_match_only_everything():
    assert rx.your_computer(None) is rx.YOUR_COMPUTER
    narrow = rx.connect(_network(_group("sg-app", _rule(5000, f"{YOU}/32"))), rx.YOUR_COMPUTER, _app(), 5000)
    assert not narrow.allowed and "address unknown: only a 0.0.0.0/0 rule is sure to match" in narrow.reason
    assert rx.connect(_network(_group("sg-app", _rule(5000, "0.0.0.0/0"))), rx.YOUR_COMPUTER, _app(), 5000).allowed


def test_an_instance_leaving_its_vpc_comes_from_its_public_ip():
    net = _network(_group("sg-app", _rule(5000, "198.51.100.11/32")), _group("sg-client"))
    client = rx.Node("client", "instance", VPC, ("subnet-pub",), ("sg-client",), "10.0.1.11", True, "198.51.100.11")
    assert rx.connect_public(net, client, _app(), 5000).allowed
    stranger = rx.Node("other", "instance", VPC, ("subnet-pub",), ("sg-client",), "10.0.1.12", True, "198.51.100.12")
    assert rx.connect_public(net, stranger, _app(), 5000).reason == (
        "sg-app: no inbound rule for tcp 5000 from other (198.51.100.12)")
    # Its private address is not what the public IP's rules see.
    assert not rx.connect_public(_network(_group("sg-app", _rule(5000, "10.0.1.11/32")), _group("sg-client")),
                                 client, _app(), 5000).allowed


def test_a_function_behind_a_nat_gateway_comes_from_the_nat_gateways_address():
    fn = rx.Node("fn", "lambda", VPC, ("subnet-priv",), ("sg-client",), "10.0.11.5")
    assert rx.connect_public(_network(_group("sg-app", _rule(5000, "198.51.100.20/32")), _group("sg-client")),
                             fn, _app(), 5000).allowed
    assert not rx.connect_public(_network(_group("sg-app", _rule(5000, YOU + "/32")), _group("sg-client")),
                                 fn, _app(), 5000).allowed


def test_the_default_group_lets_in_its_members_only():
    default = {**_group("sg-default", {"IpProtocol": "-1", "IpRanges": [], "UserIdGroupPairs": [
        {"GroupId": "sg-default"}]}), "GroupName": "default"}
    net = _network(default, _group("sg-other"))
    app = _app("sg-default")
    member = rx.Node("peer", "instance", VPC, ("subnet-pub",), ("sg-default",), "10.0.1.20")
    outsider = rx.Node("outsider", "instance", VPC, ("subnet-pub",), ("sg-other",), "10.0.1.21")
    assert rx.connect(net, member, app, 5000).reason == "default allows all traffic from default"
    assert not rx.connect(net, outsider, app, 5000).allowed
    assert not rx.connect(net, rx.your_computer("127.0.0.1"), app, 5000).allowed


def test_leaving_for_a_public_address_needs_an_outbound_rule_for_that_port_and_address():
    """Egress is checked for the connection's own port and destination, not for HTTPS to anywhere."""
    client = rx.Node("client", "instance", VPC, ("subnet-pub",), ("sg-client",), "10.0.1.11", True, "198.51.100.11")
    egress = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    https_only = {**_group("sg-client"), "IpPermissionsEgress": [egress]}
    net = _network(_group("sg-app", _rule(5000, "0.0.0.0/0")), https_only)
    assert rx.connect_public(net, client, _app(), 5000).reason == (
        "sg-client: no outbound rule for tcp 5000 to 198.51.100.10")
    to_app = {**egress, "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "198.51.100.10/32"}]}
    net = _network(_group("sg-app", _rule(5000, "0.0.0.0/0")), {**https_only, "IpPermissionsEgress": [to_app]})
    assert rx.connect_public(net, client, _app(), 5000).allowed
    assert not rx.connect_public(net, client, _app(public_ip="198.51.100.99"), 5000).allowed


# -- gateway endpoints and the S3 prefix list (issue 26, point 5) -----------------------------------------------
S3_LIST = {"PrefixListId": "pl-63a5400a", "PrefixListName": "com.amazonaws.us-east-1.s3",
           "Cidrs": ["52.216.0.0/15", "3.5.0.0/19", "54.231.0.0/16"]}


def _s3_network(egress: list[dict], nat: bool = False) -> rx.Network:
    """The private subnet with an S3 gateway endpoint on its table (and a NAT route when ``nat``)."""
    net = _network({**_group("sg-fn"), "IpPermissionsEgress": egress})
    net.prefix_lists = [S3_LIST]
    net.endpoints = [{"VpcEndpointId": "vpce-s3", "VpcId": VPC, "VpcEndpointType": "Gateway", "State": "available",
                      "ServiceName": "com.amazonaws.us-east-1.s3", "RouteTableIds": ["rtb-priv"]}]
    if not nat:
        net.route_tables[1]["Routes"] = []
    return net


FN = rx.Node("fn", "lambda", VPC, ("subnet-priv",), ("sg-fn",), "10.0.11.5")


@pytest.mark.parametrize("egress,allowed", [
    ([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], True),
    ([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], True),
    ([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-63a5400a"}]}], True),
    ([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "52.216.0.0/15"},
                                                                         {"CidrIp": "3.5.0.0/19"}]}], False),
    ([{"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], False),
    ([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-other"}]}], False),
    ([], False),
])
def test_s3_through_a_gateway_endpoint_needs_the_groups_egress(egress, allowed):
    verdict = rx.api_path(_s3_network(egress), FN, "s3")
    assert verdict.allowed is allowed, verdict
    if allowed:
        assert verdict.reason.startswith("gateway endpoint vpce-s3 on rtb-priv; sg-fn allows ")
    else:
        assert verdict.reason == ("sg-fn: no outbound rule for tcp 443 to 0.0.0.0/0 or to the prefix list "
                                  "pl-63a5400a (com.amazonaws.us-east-1.s3)")


def test_a_rule_holding_all_of_s3s_ranges_allows_s3_and_nothing_else():
    part = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "128.0.0.0/1"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "52.0.0.0/8"}]}]
    assert not rx.api_path(_s3_network(part), FN, "s3").allowed  # 3.5.0.0/19 and 54.231.0.0/16 are in neither
    holds = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/1"}]}]
    assert rx.api_path(_s3_network(holds), FN, "s3").reason.endswith("sg-fn allows tcp 443 to 0.0.0.0/1")
    # Through a NAT gateway the prefix list still names S3's addresses; any other service needs 0.0.0.0/0.
    listed = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-63a5400a"}]}]
    net = _s3_network(listed, nat=True)
    net.endpoints = []
    assert rx.api_path(net, FN, "s3").allowed
    assert rx.api_path(net, FN, "sts").reason == "sg-fn: no outbound rule for tcp 443 to 0.0.0.0/0"

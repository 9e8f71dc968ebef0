"""Network ACLs on describe-shaped records (issue 26, point 6): numbered rules in order, first match wins, both
directions, stateless (the replies go to the client's ephemeral ports), only between subnets."""
from __future__ import annotations

import pytest

from labkit import network_acls as nacl
from labkit import reachability as rx

VPC = "vpc-1"
ALL_OUT = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def _entry(number: int, egress: bool, action: str = "allow", cidr: str = "0.0.0.0/0", protocol: str = "6",
           ports: tuple[int, int] | None = None) -> dict:
    entry = {"RuleNumber": number, "Egress": egress, "RuleAction": action, "CidrBlock": cidr, "Protocol": protocol}
    if ports:
        entry["PortRange"] = {"From": ports[0], "To": ports[1]}
    return entry


STARS = [_entry(32767, True, "deny", protocol="-1"), _entry(32767, False, "deny", protocol="-1")]
DEFAULT = {"NetworkAclId": "acl-default", "VpcId": VPC, "IsDefault": True,
           "Entries": [_entry(100, True, protocol="-1"), _entry(100, False, protocol="-1"), *STARS],
           "Associations": [{"SubnetId": s} for s in ("subnet-pub", "subnet-a", "subnet-b")]}


def _custom(*entries: dict, subnets: tuple[str, ...] = ("subnet-a", "subnet-b")) -> dict:
    return {"NetworkAclId": "acl-private", "VpcId": VPC, "IsDefault": False, "Entries": [*entries, *STARS],
            "Tags": [{"Key": "Name", "Value": "private-nacl"}], "Associations": [{"SubnetId": s} for s in subnets]}


def _network(*custom: dict) -> rx.Network:
    groups = [{"GroupId": g, "GroupName": g, "VpcId": VPC, "IpPermissionsEgress": ALL_OUT, "IpPermissions": []}
              for g in ("sg-fn", "sg-app")]
    groups.append({"GroupId": "sg-db", "GroupName": "sg-db", "VpcId": VPC, "IpPermissionsEgress": ALL_OUT,
                   "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
                                      "UserIdGroupPairs": [{"GroupId": "sg-fn"}, {"GroupId": "sg-app"}]}]})
    groups.append({"GroupId": "sg-web", "GroupName": "sg-web", "VpcId": VPC, "IpPermissionsEgress": ALL_OUT,
                   "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000,
                                      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]})
    acls = [DEFAULT, *custom]
    if custom:  # a subnet is associated with one ACL: the custom one takes its subnets from the default
        taken = {a["SubnetId"] for c in custom for a in c["Associations"]}
        acls[0] = {**DEFAULT, "Associations": [a for a in DEFAULT["Associations"] if a["SubnetId"] not in taken]}
    return rx.Network(
        security_groups=groups, network_acls=acls,
        subnets=[{"SubnetId": "subnet-pub", "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
                 {"SubnetId": "subnet-a", "VpcId": VPC, "CidrBlock": "10.0.11.0/24"},
                 {"SubnetId": "subnet-b", "VpcId": VPC, "CidrBlock": "10.0.12.0/24"}],
        internet_gateways=[{"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": VPC, "State": "available"}]}],
        route_tables=[{"RouteTableId": "rtb-pub", "VpcId": VPC, "Associations": [{"SubnetId": "subnet-pub"}],
                       "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}]}])


FN = rx.Node("order-validator", "lambda", VPC, ("subnet-a", "subnet-b"), ("sg-fn",), "10.0.11.5")
DB = rx.Node("orders-db", "rds", VPC, ("subnet-b", "subnet-a"), ("sg-db",), "10.0.12.7")
APP = rx.Node("app", "instance", VPC, ("subnet-pub",), ("sg-app", "sg-web"), "10.0.1.10", True, "198.51.100.10")
# "The return traffic": MySQL and HTTPS in from the VPC, the replies to the VPC's clients let in, but out only
# MySQL and HTTPS: the database's replies (to the function's ephemeral ports) have no outbound rule.
LESSON = (_entry(100, False, cidr="10.0.0.0/16", ports=(3306, 3306)), _entry(110, False, cidr="10.0.0.0/16", ports=(443, 443)),
          _entry(120, False, ports=(1024, 65535)),
          _entry(100, True, cidr="10.0.0.0/16", ports=(3306, 3306)), _entry(110, True, ports=(443, 443)))


def test_the_default_acl_lets_everything_through():
    assert rx.connect(_network(), FN, DB, 3306) == rx.Verdict(True, "sg-db allows tcp 3306 from sg-fn")


def test_a_new_custom_acl_denies_everything_with_its_star_rule():
    verdict = rx.connect(_network(_custom()), FN, DB, 3306)
    assert verdict == rx.Verdict(False, "network ACL private-nacl (acl-private) of subnet-a: outbound tcp 3306 to "
                                        "10.0.12.7/32 denied by rule *")


def test_the_replies_need_an_outbound_rule_for_the_clients_ephemeral_ports():
    verdict = rx.connect(_network(_custom(*LESSON)), FN, DB, 3306)
    assert verdict == rx.Verdict(False, "network ACL private-nacl (acl-private) of subnet-b: outbound tcp 1024-65535 "
                                        "to 10.0.11.0/24 (the replies to order-validator's ephemeral ports) denied "
                                        "by rule * (allowed in part: rule 100 for 3306)")
    fixed = _custom(*LESSON, _entry(120, True, cidr="10.0.0.0/16", ports=(1024, 65535)))
    assert rx.connect(_network(fixed), FN, DB, 3306).allowed


def test_between_two_interfaces_of_one_subnet_no_acl_applies():
    here = rx.Node("order-validator", "lambda", VPC, ("subnet-b",), ("sg-fn",), "10.0.12.5")
    assert rx.connect(_network(_custom()), here, DB, 3306).allowed
    # A function in both subnets may be given either: the path must work from both.
    assert not rx.connect(_network(_custom(subnets=("subnet-a",))), FN, DB, 3306).allowed


def test_the_first_matching_rule_decides():
    deny_first = _custom(_entry(90, True, "deny", cidr="10.0.12.0/24", ports=(3306, 3306)),
                         _entry(100, True, protocol="-1"), _entry(100, False, protocol="-1"))
    assert rx.connect(_network(deny_first), FN, DB, 3306).reason == (
        "network ACL private-nacl (acl-private) of subnet-a: outbound tcp 3306 to 10.0.12.7/32 denied by rule 90")
    allow_first = _custom(_entry(90, True, protocol="-1"), _entry(95, True, "deny", cidr="10.0.12.0/24"),
                          _entry(100, False, protocol="-1"))
    assert rx.connect(_network(allow_first), FN, DB, 3306).allowed


def test_an_ephemeral_range_allowed_in_part_is_denied_for_a_function_but_not_for_linux():
    """Lambda's replies come back to 1024-65535; an instance's (Linux) to 32768-60999."""
    linux_only = _custom(*LESSON, _entry(120, True, cidr="10.0.0.0/16", ports=(32768, 65535)))
    verdict = rx.connect(_network(linux_only), FN, DB, 3306)
    assert verdict.reason.endswith("denied by rule * (allowed in part: rule 100 for 3306, rule 120 for "
                                   "32768-65535)"), verdict
    instance = rx.Node("worker", "instance", VPC, ("subnet-a",), ("sg-app",), "10.0.11.20")
    assert rx.connect(_network(linux_only), instance, DB, 3306).allowed


@pytest.mark.parametrize("protocol,allowed", [("-1", True), ("6", True), ("17", False), ("1", False), ("50", False)])
def test_only_all_traffic_and_tcp_rules_match_a_tcp_connection(protocol, allowed):
    both = _custom(_entry(100, True, protocol=protocol), _entry(100, False, protocol=protocol))
    assert rx.connect(_network(both), FN, DB, 3306).allowed is allowed


def test_your_computer_needs_the_public_subnets_acl_both_ways():
    you = rx.your_computer("203.0.113.7")
    public = _custom(_entry(100, False, ports=(5000, 5000)), _entry(100, True, ports=(32768, 65535)),
                     subnets=("subnet-pub",))
    verdict = rx.connect(_network(public), you, APP, 5000)
    assert verdict.reason == ("network ACL private-nacl (acl-private) of subnet-pub: outbound tcp 1024-65535 to "
                              "203.0.113.7/32 (the replies to your computer's ephemeral ports) denied by rule * "
                              "(allowed in part: rule 100 for 32768-65535)")
    opened = _custom(_entry(100, False, ports=(5000, 5000)), _entry(100, True, ports=(1024, 65535)),
                     subnets=("subnet-pub",))
    assert rx.connect(_network(opened), you, APP, 5000).allowed


def test_s3_through_the_gateway_endpoint_needs_the_acl_to_hold_s3s_addresses():
    net = _network(_custom(_entry(100, True, cidr="10.0.0.0/16", ports=(443, 443)),
                           _entry(100, False, ports=(1024, 65535))))
    net.prefix_lists = [{"PrefixListId": "pl-63a5400a", "PrefixListName": "com.amazonaws.us-east-1.s3",
                         "Cidrs": ["52.216.0.0/15", "3.5.0.0/19"]}]
    net.route_tables.append({"RouteTableId": "rtb-priv", "VpcId": VPC, "Routes": [],
                             "Associations": [{"SubnetId": "subnet-a"}, {"SubnetId": "subnet-b"}]})
    net.endpoints = [{"VpcEndpointId": "vpce-s3", "VpcId": VPC, "VpcEndpointType": "Gateway", "State": "available",
                      "ServiceName": "com.amazonaws.us-east-1.s3", "RouteTableIds": ["rtb-priv"]}]
    verdict = rx.api_path(net, FN, "s3")
    assert verdict.reason == ("network ACL private-nacl (acl-private) of subnet-a: outbound tcp 443 to the s3 endpoint "
                              "(52.216.0.0/15, 3.5.0.0/19) denied by rule *")
    net.network_acls[1]["Entries"].insert(0, _entry(110, True, ports=(443, 443)))
    assert rx.api_path(net, FN, "s3").allowed


def test_evaluate_covers_every_port_of_the_range_in_rule_order():
    acl = _custom(_entry(10, True, ports=(1024, 2000)), _entry(20, True, "deny", ports=(1500, 1600)),
                  _entry(30, True, ports=(2001, 65535)))
    peer = nacl.Peer("x", ("10.0.0.1/32",))
    assert nacl.evaluate(acl, True, peer, (1024, 65535)) == (True, 30, [(10, [(1024, 2000)]), (30, [(2001, 65535)])])
    assert nacl.evaluate(acl, True, peer, (1, 65535)) == (False, 32767, [(10, [(1024, 2000)]), (30, [(2001, 65535)])])
    assert nacl.evaluate(acl, False, peer, (443, 443)) == (False, 32767, [])

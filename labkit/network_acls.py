"""Network ACLs as AWS evaluates them, from DescribeNetworkAcls records: the subnet's stateless firewall.

Used by :mod:`labkit.reachability` (so on both targets: labkit's path table and the local cloud's network model).
What AWS documents ("Control subnet traffic with network access control lists", CreateNetworkAclEntry):

* every subnet is associated with exactly one network ACL (the VPC's default one until another is associated);
* each ACL has inbound (ingress) and outbound (egress) rules, evaluated separately, **in ascending rule number;
  the first rule that matches decides** (allow or deny); the last rule, shown as ``*`` (rule number 32767 in the
  API), denies what no rule matched. The default ACL allows all (rule 100 both ways); a new custom ACL has only the
  ``*`` rules, so it denies all until rules are added;
* inbound rules match a packet's **source** address, outbound rules its **destination** address, both on the
  **destination** port; protocol ``-1`` is all traffic, ``6`` is TCP (with a port range);
* ACLs are **stateless**: the reply of a connection is a new packet in the other direction, to the client's
  ephemeral port, and needs its own rule. AWS's figures ("Ephemeral ports"): Lambda functions and NAT gateways
  use 1024-65535, Linux 32768-61000 (the kernel's default range is 32768-60999: what the model uses for an
  instance); for a client that could be anything (your computer) AWS advises opening 1024-65535, so the model
  asks that;
* they apply to traffic that crosses the subnet's boundary, not between two interfaces of the same subnet.

Two things the model must decide that AWS leaves to the packet: the address of a peer it does not know exactly
(an AWS service's public endpoint, a function's network interface somewhere in its subnet) is the set of addresses
it may have, and a rule applies only when its CIDR holds all of them (0.0.0.0/0 for an unknown public address, the
prefix list's CIDRs for S3, the subnet's CIDR for a function); the client's port is any of its ephemeral range, so
a reply is allowed only when every port of the range is (a range allowed in part works only sometimes on AWS).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALL_PORTS = (0, 65535)
LAST_RULE = 32767  # the "*" rule, as the API shows it
TCP = "6"
# The client's ephemeral ports by what it is (VPC User Guide, "Ephemeral ports").
EPHEMERAL = {"lambda": (1024, 65535), "nat": (1024, 65535), "instance": (32768, 60999), "internet": (1024, 65535),
             "endpoint": (1024, 65535), "rds": (32768, 60999)}

Record = Mapping[str, Any]
Ports = tuple[int, int]


@dataclass(frozen=True)
class Peer:
    """The other end of a packet as a rule sees it: a name for the reason, and the addresses it may have."""

    name: str
    cidrs: tuple[str, ...]

    @property
    def shown(self) -> str:
        return self.cidrs[0] if len(self.cidrs) == 1 else f"{self.name} ({', '.join(self.cidrs)})"


@dataclass(frozen=True)
class AclVerdict:
    allowed: bool
    reason: str


def network_acl(acls: Iterable[Record], subnet_id: str, vpc_id: str | None) -> Record | None:
    """The ACL associated with ``subnet_id``, else its VPC's default ACL (a subnet always has one on AWS)."""
    listed = list(acls)
    for acl in listed:
        if any(a.get("SubnetId") == subnet_id for a in acl.get("Associations", [])):
            return acl
    return next((a for a in listed if a.get("VpcId") == vpc_id and a.get("IsDefault")), None)


def acl_label(acl: Record) -> str:
    """``name (acl-…)`` when the ACL has a Name tag, else its id."""
    name = next((t["Value"] for t in acl.get("Tags", []) if t.get("Key") == "Name"), None)
    return f"{name} ({acl['NetworkAclId']})" if name else str(acl["NetworkAclId"])


def rule_label(number: int) -> str:
    return "*" if number >= LAST_RULE else str(number)


def ports_label(ports: Ports) -> str:
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def holds_all(cidr: str, peer: Sequence[str]) -> bool:
    outer = _network(cidr)
    if outer is None:
        return False
    for inner_text in peer:
        inner = _network(inner_text)
        if inner is None or inner.version != outer.version:
            return False
        if not (inner.network_address in outer and inner.broadcast_address in outer):
            return False
    return True


def _entry_ports(entry: Record) -> Ports | None:
    """The ports an entry matches for TCP traffic: None when it is not for TCP (UDP, ICMP, another protocol)."""
    protocol = str(entry.get("Protocol", ""))
    if protocol == "-1":
        return ALL_PORTS
    if protocol != TCP:
        return None
    port_range = entry.get("PortRange") or {}
    low, high = port_range.get("From"), port_range.get("To")
    if low is None or high is None:
        return ALL_PORTS
    return int(low), int(high)


def _subtract(remaining: list[Ports], cut: Ports) -> tuple[list[Ports], list[Ports]]:
    """``remaining`` without ``cut``, and the parts of ``remaining`` that ``cut`` covered."""
    left: list[Ports] = []
    covered: list[Ports] = []
    for low, high in remaining:
        if cut[1] < low or cut[0] > high:
            left.append((low, high))
            continue
        covered.append((max(low, cut[0]), min(high, cut[1])))
        if low < cut[0]:
            left.append((low, cut[0] - 1))
        if cut[1] < high:
            left.append((cut[1] + 1, high))
    return left, covered


def evaluate(acl: Record, egress: bool, peer: Peer, ports: Ports) -> tuple[bool, int, list[tuple[int, list[Ports]]]]:
    """Apply ``acl``'s rules of one direction to TCP packets to or from ``peer`` on every port of ``ports``:
    (allowed, the deciding rule number, each rule that allowed a part, with the ports it allowed)."""
    entries = sorted((e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress and e.get("CidrBlock")),
                     key=lambda e: int(e.get("RuleNumber", LAST_RULE)))
    remaining: list[Ports] = [ports]
    allowed_by: list[tuple[int, list[Ports]]] = []
    for entry in entries:
        matched = _entry_ports(entry)
        if matched is None or not holds_all(str(entry["CidrBlock"]), peer.cidrs):
            continue
        remaining, covered = _subtract(remaining, matched)
        if not covered:
            continue
        number = int(entry.get("RuleNumber", LAST_RULE))
        if entry.get("RuleAction") != "allow":
            return False, number, allowed_by
        allowed_by.append((number, covered))
        if not remaining:
            return True, number, allowed_by
    return False, LAST_RULE, allowed_by  # AWS's "*" rule (a record without it denies all the same)


def check(acl: Record | None, subnet_id: str, egress: bool, peer: Peer, ports: Ports,
          why: str = "") -> AclVerdict:
    """One direction of one subnet's ACL for a packet to (egress) or from ``peer`` on ``ports``, explained."""
    if acl is None:
        return AclVerdict(True, f"{subnet_id} has no network ACL")
    allowed, number, partly = evaluate(acl, egress, peer, ports)
    way = "outbound" if egress else "inbound"
    what = f"{way} tcp {ports_label(ports)} {'to' if egress else 'from'} {peer.shown}{why}"
    if allowed:
        return AclVerdict(True, f"network ACL {acl_label(acl)} of {subnet_id} allows {what} (rule {rule_label(number)})")
    part = ""
    if partly:
        part = " (allowed in part: " + ", ".join(
            f"rule {rule_label(n)} for {', '.join(ports_label(c) for c in covered)}" for n, covered in partly) + ")"
    return AclVerdict(False, f"network ACL {acl_label(acl)} of {subnet_id}: {what} denied by rule "
                             f"{rule_label(number)}{part}")


def connection(acls: Iterable[Record], vpc_id: str | None, client_subnet: str, client: Peer,
               client_ports: Ports, server_subnet: str, server: Peer, port: int) -> AclVerdict:
    """A TCP connection from ``client`` (in ``client_subnet``, its ephemeral ``client_ports``) to ``server``:``port``
    (in ``server_subnet``), both ways through both subnets' ACLs; '' for a subnet outside the VPC (the internet)."""
    listed = list(acls)
    if client_subnet and client_subnet == server_subnet:
        return AclVerdict(True, f"both in {client_subnet}: no network ACL between them")
    reply = f" (the replies to {client.name}'s ephemeral ports)"
    steps: list[tuple[str, bool, Peer, Ports, str]] = []
    if client_subnet:
        steps.append((client_subnet, True, server, (port, port), ""))
    if server_subnet:
        steps += [(server_subnet, False, client, (port, port), ""), (server_subnet, True, client, client_ports, reply)]
    if client_subnet:
        steps.append((client_subnet, False, server, client_ports, reply))
    for subnet, egress, peer, ports, why in steps:
        verdict = check(network_acl(listed, subnet, vpc_id), subnet, egress, peer, ports, why)
        if not verdict.allowed:
            return verdict
    return AclVerdict(True, "the network ACLs allow it both ways")

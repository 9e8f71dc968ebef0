"""VPC reachability from describe-shaped data, as AWS's Reachability Analyzer reasons about it.

One set of rules, used twice: labkit explains the lab's paths on both targets (``reachability_frame``),
and the local cloud's network model (:mod:`labkit.localcloud.network.service`) enforces them on every
connection. Inputs are the dictionaries boto3's describe calls return (security groups, route tables,
VPC endpoints, internet and NAT gateways, subnets); a :class:`Node` says where a component sits.

The rules (TCP only; security groups are stateful, network ACLs stateless: :mod:`labkit.network_acls`):

* inside one VPC, a connection is carried when the destination's groups allow the port from one of the
  source's groups or from a CIDR holding the source's private address, the source's egress allows it, and,
  between two subnets, both subnets' network ACLs let the request through and the replies back to the
  client's ephemeral ports (from each subnet the source may use: a function's interfaces are in all of its
  subnets, and AWS picks one per connection);
* from the internet to a component only when it has a public address (an instance's public IP; an RDS
  instance with PubliclyAccessible), its subnet routes 0.0.0.0/0 to an internet gateway attached to the
  VPC, and its groups allow the port from a CIDR holding the source's address (0.0.0.0/0 holds every
  address; your computer's is what https://checkip.amazonaws.com answers, :func:`your_computer`; a
  component of a VPC comes out of it at its public IP, or at its NAT gateway's);
* an AWS API call from inside a VPC goes, in AWS's order: to an interface endpoint of the service with
  private DNS (which captures the whole VPC, so its groups must allow 443 from the caller); to an S3
  gateway endpoint on the subnet's route table; through a NAT gateway route; through an internet gateway
  route when the caller has a public IP (never a Lambda ENI). Otherwise it hangs. Every way needs the caller's
  groups to allow the traffic out: to 0.0.0.0/0 (an AWS endpoint's address is not known in advance), or for S3
  to the region's S3 prefix list (``PrefixListIds``) or a CIDR holding all of its ranges; a gateway endpoint
  is no exception (PrivateLink guide: "The rules for the security groups for your instances that access
  Amazon S3 through a gateway endpoint must allow traffic to and from Amazon S3"). The subnets' network ACLs
  must let it through both ways too, to the service's addresses (S3's are its prefix list's CIDRs).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labkit import network_acls as nacl

INTERNET = "0.0.0.0/0"
HTTPS = 443


@dataclass(frozen=True)
class Node:
    """Where a component sits: ``vpc_id`` None means outside every VPC (on the internet)."""

    name: str
    kind: str  # "internet" | "instance" | "lambda" | "rds" | "endpoint"
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    private_ip: str | None = None
    public: bool = False  # instance public IP / RDS PubliclyAccessible
    public_ip: str | None = None  # an instance's public IP; on the internet, the node's address (None: unknown)
    ephemeral: tuple[int, int] | None = None  # the ports its connections come from (None: by its kind)


YOUR_COMPUTER = Node("your computer", "internet")  # its address unknown: only a 0.0.0.0/0 rule is sure to match


def your_computer(address: str | None) -> Node:
    """Your computer on the internet, at ``address`` (what https://checkip.amazonaws.com answers it)."""
    return Node("your computer", "internet", public_ip=address) if address else YOUR_COMPUTER


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


@dataclass
class Network:
    """Describe-shaped records of one account and region (any number of VPCs)."""

    security_groups: list[dict] = field(default_factory=list)
    route_tables: list[dict] = field(default_factory=list)
    endpoints: list[dict] = field(default_factory=list)
    internet_gateways: list[dict] = field(default_factory=list)
    nat_gateways: list[dict] = field(default_factory=list)
    subnets: list[dict] = field(default_factory=list)
    network_acls: list[dict] = field(default_factory=list)
    prefix_lists: list[dict] = field(default_factory=list)  # AWS's service prefix lists (DescribePrefixLists)

    @classmethod
    def describe(cls, ec2: Any, vpc_ids: Iterable[str] | None = None) -> Network:
        """Read the records through an EC2 client (both targets); ``vpc_ids`` narrows them."""
        flt = [{"Name": "vpc-id", "Values": list(vpc_ids)}] if vpc_ids else []
        igw_flt = [{"Name": "attachment.vpc-id", "Values": list(vpc_ids)}] if vpc_ids else []

        def pages(op: str, key: str, filters: list) -> list[dict]:
            kwargs = {"Filters": filters} if filters else {}
            return [item for page in ec2.get_paginator(op).paginate(**kwargs) for item in page[key]]

        return cls(security_groups=pages("describe_security_groups", "SecurityGroups", flt),
                   route_tables=pages("describe_route_tables", "RouteTables", flt),
                   endpoints=pages("describe_vpc_endpoints", "VpcEndpoints", flt),
                   internet_gateways=pages("describe_internet_gateways", "InternetGateways", igw_flt),
                   nat_gateways=pages("describe_nat_gateways", "NatGateways", flt),
                   subnets=pages("describe_subnets", "Subnets", flt),
                   network_acls=pages("describe_network_acls", "NetworkAcls", flt),
                   prefix_lists=pages("describe_prefix_lists", "PrefixLists", []))

    # -- lookups ------------------------------------------------------------------------------------------
    def group(self, group_id: str) -> dict | None:
        return next((g for g in self.security_groups if g["GroupId"] == group_id), None)

    def group_name(self, group_id: str) -> str:
        found = self.group(group_id)
        return found["GroupName"] if found else group_id

    def subnet(self, subnet_id: str) -> dict | None:
        return next((s for s in self.subnets if s["SubnetId"] == subnet_id), None)

    def route_table(self, subnet_id: str) -> dict | None:
        """The subnet's explicitly associated table, else its VPC's main table."""
        for table in self.route_tables:
            if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
                return table
        subnet = self.subnet(subnet_id)
        vpc = subnet["VpcId"] if subnet else None
        return next((t for t in self.route_tables if t.get("VpcId") == vpc
                     and any(a.get("Main") for a in t.get("Associations", []))), None)

    def default_route(self, subnet_id: str) -> dict | None:
        """The active 0.0.0.0/0 route of the subnet's table."""
        table = self.route_table(subnet_id)
        for route in (table or {}).get("Routes", []):
            if route.get("DestinationCidrBlock") == INTERNET and route.get("State", "active") == "active":
                return route
        return None

    def igw_attached(self, igw_id: str, vpc_id: str | None) -> bool:
        return any(g["InternetGatewayId"] == igw_id and any(
            a.get("VpcId") == vpc_id and a.get("State", "available") in ("available", "attached")
            for a in g.get("Attachments", [])) for g in self.internet_gateways)

    def internet_route(self, subnet_id: str, vpc_id: str | None) -> tuple[str, str] | None:
        """('igw'|'nat', id) when the subnet's default route leads out of the VPC."""
        route = self.default_route(subnet_id)
        if not route:
            return None
        gateway = route.get("GatewayId") or ""
        if gateway.startswith("igw-") and self.igw_attached(gateway, vpc_id):
            return "igw", gateway
        nat_id = route.get("NatGatewayId")
        if nat_id:
            nat = next((n for n in self.nat_gateways if n["NatGatewayId"] == nat_id), None)
            if nat and nat.get("State") == "available":
                out = self.internet_route(nat["SubnetId"], vpc_id)
                if out and out[0] == "igw" and nat.get("ConnectivityType", "public") == "public":
                    return "nat", nat_id
        return None

    def interface_endpoint(self, vpc_id: str, service: str, region: str) -> dict | None:
        name = f"com.amazonaws.{region}.{service}"
        return next((e for e in self.endpoints if e.get("VpcId") == vpc_id and e.get("ServiceName") == name
                     and e.get("VpcEndpointType") == "Interface" and e.get("PrivateDnsEnabled")
                     and str(e.get("State", "")).lower() == "available"), None)

    def gateway_endpoint(self, route_table_id: str, service: str, region: str) -> dict | None:
        name = f"com.amazonaws.{region}.{service}"
        return next((e for e in self.endpoints if e.get("ServiceName") == name
                     and e.get("VpcEndpointType") == "Gateway" and route_table_id in e.get("RouteTableIds", [])
                     and str(e.get("State", "")).lower() == "available"), None)

    def nat_public_ip(self, nat_id: str) -> str | None:
        nat = next((n for n in self.nat_gateways if n["NatGatewayId"] == nat_id), {})
        return next((a["PublicIp"] for a in nat.get("NatGatewayAddresses", []) if a.get("PublicIp")), None)

    def subnet_cidr(self, subnet_id: str) -> str | None:
        subnet = self.subnet(subnet_id)
        return subnet["CidrBlock"] if subnet else None

    def service_prefix_list(self, service: str, region: str) -> dict | None:
        """The AWS-managed prefix list of ``service`` (``com.amazonaws.<region>.s3``): its id and CIDRs."""
        name = f"com.amazonaws.{region}.{service}"
        return next((p for p in self.prefix_lists if p.get("PrefixListName") == name), None)

    def network_acl(self, subnet_id: str) -> dict | None:
        subnet = self.subnet(subnet_id)
        found = nacl.network_acl(self.network_acls, subnet_id, subnet["VpcId"] if subnet else None)
        return dict(found) if found is not None else None

    # -- security groups ----------------------------------------------------------------------------------
    def allows(self, group_ids: Iterable[str], port: int, peer: Node, egress: bool = False,
               peer_cidrs: Iterable[str] = (), service: dict | None = None) -> str | None:
        """The first rule of ``group_ids`` that lets TCP ``port`` in from (or out to) ``peer``, described; with
        ``service`` (an AWS prefix list) the peer is that service: a rule naming the list, or a CIDR holding all of
        its ranges, matches too."""
        peer_groups = set(peer.group_ids)
        internet = peer.vpc_id is None  # on the internet a node has one address, its public one
        addresses = [a for a in ([peer.public_ip] if internet else [peer.private_ip]) if a]
        for group_id in group_ids:
            group = self.group(group_id)
            if group is None:
                continue
            for perm in group.get("IpPermissionsEgress" if egress else "IpPermissions", []):
                if not _covers(perm, port):
                    continue
                what = "all traffic" if perm.get("IpProtocol") == "-1" else f"tcp {port}"
                verb = "to" if egress else "from"
                for pair in perm.get("UserIdGroupPairs", []):
                    if pair.get("GroupId") in peer_groups:
                        return f"{group['GroupName']} allows {what} {verb} {self.group_name(pair['GroupId'])}"
                for cidr in (r.get("CidrIp") for r in perm.get("IpRanges", [])):
                    if cidr and _cidr_holds(cidr, addresses, peer_cidrs, internet):
                        return f"{group['GroupName']} allows {what} {verb} {cidr}"
                    if cidr and service and service.get("Cidrs") and nacl.holds_all(cidr, service["Cidrs"]):
                        return f"{group['GroupName']} allows {what} {verb} {cidr}"
                if service is None:
                    continue
                for listed in perm.get("PrefixListIds", []):
                    if listed.get("PrefixListId") == service["PrefixListId"]:
                        return (f"{group['GroupName']} allows {what} {verb} {service['PrefixListId']} "
                                f"({service.get('PrefixListName')})")
        return None


def _covers(perm: dict, port: int) -> bool:
    proto = str(perm.get("IpProtocol", ""))
    if proto == "-1":
        return True
    if proto not in ("tcp", "6"):
        return False
    low, high = perm.get("FromPort", -1), perm.get("ToPort", -1)
    return low == -1 or low <= port <= high


def _cidr_holds(cidr: str, addresses: list[str], cidrs: Iterable[str], internet: bool) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    if net.prefixlen == 0 or any(ipaddress.ip_address(a) in net for a in addresses):
        return True
    if internet:  # an address on the internet (unknown: only a rule open to every address is sure to match)
        return False
    return any(_subnet_of(ipaddress.ip_network(c), net) for c in cidrs if c)


def _subnet_of(inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
               outer: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False  # an IPv4 network is never inside an IPv6 one, nor the other way


def _who(node: Node) -> str:
    """A source as a rule sees it: its groups inside a VPC, its address on the internet."""
    if node.vpc_id is not None:
        return f"{node.name} ({node.private_ip})"
    if node.public_ip:
        return f"{node.name} ({node.public_ip})"
    return f"{node.name} (address unknown: only a 0.0.0.0/0 rule is sure to match)"


def _names(net: Network, group_ids: Iterable[str]) -> str:
    return ", ".join(net.group_name(g) for g in group_ids) or "no group"


# -- network ACLs on a path --------------------------------------------------------------------------------
def _ephemeral(node: Node) -> tuple[int, int]:
    return node.ephemeral or nacl.EPHEMERAL.get(node.kind, nacl.EPHEMERAL["internet"])


def _peer(net: Network, node: Node, subnet: str) -> nacl.Peer:
    """``node``'s addresses as a network ACL rule sees them: its own address when it has one there, else any
    address of its subnet (a function's or an endpoint's interface), on the internet its public address (0.0.0.0/0
    when unknown)."""
    if node.vpc_id is None:
        return nacl.Peer(node.name, (f"{node.public_ip}/32",) if node.public_ip else (INTERNET,))
    cidr = net.subnet_cidr(subnet)
    if node.private_ip and node.kind in ("instance", "rds") and (not cidr or nacl.holds_all(cidr, [node.private_ip])):
        return nacl.Peer(node.name, (f"{node.private_ip}/32",))
    return nacl.Peer(node.name, (cidr,) if cidr else (INTERNET,))


def _service_peer(name: str, prefix_list: dict | None) -> nacl.Peer:
    """An AWS service's public endpoint: its prefix list's ranges (S3), else any address."""
    cidrs = tuple((prefix_list or {}).get("Cidrs") or ())
    return nacl.Peer(f"the {name} endpoint" if cidrs else name, cidrs or (INTERNET,))


def _server_subnets(node: Node) -> tuple[str, ...]:
    """Where a server's interface sits: an RDS instance in one subnet of its group (the first, see db_node), an
    endpoint in each of its subnets."""
    return node.subnet_ids[:1] if node.kind == "rds" else node.subnet_ids


def _acls_between(net: Network, client: Node, server: Node, port: int) -> Verdict | None:
    """The first denial of the network ACLs between ``client`` and ``server`` (None: they let it through), from
    every subnet the client may use to every subnet the server's interface may be in."""
    for client_subnet in client.subnet_ids:
        for server_subnet in _server_subnets(server):
            verdict = nacl.connection(net.network_acls, client.vpc_id, client_subnet, _peer(net, client, client_subnet),
                                      _ephemeral(client), server_subnet, _peer(net, server, server_subnet), port)
            if not verdict.allowed:
                return Verdict(False, verdict.reason)
    return None


def _acls_out(net: Network, client: Node, subnet: str, to: nacl.Peer, port: int,
              route: tuple[str, str] | None) -> Verdict | None:
    """The network ACLs on the way from ``subnet`` to an address outside the VPC (through the NAT gateway's subnet
    too when ``route`` is one), None when they let it through."""
    peer, ports = _peer(net, client, subnet), _ephemeral(client)
    hops: list[tuple[str, nacl.Peer, tuple[int, int]]] = [(subnet, peer, ports)]
    nat = next((n for n in net.nat_gateways if route and n["NatGatewayId"] == route[1]), None)
    if nat is not None:  # to the NAT gateway (unless it is in the same subnet), and out from its subnet
        nat_subnet = nat["SubnetId"]
        if nat_subnet != subnet:
            verdict = nacl.connection(net.network_acls, client.vpc_id, subnet, peer, ports, nat_subnet, to, port)
            if not verdict.allowed:
                return Verdict(False, verdict.reason)
        addresses = tuple(f"{a['PrivateIp']}/32" for a in nat.get("NatGatewayAddresses", []) if a.get("PrivateIp"))
        hops = [(nat_subnet, nacl.Peer(nat["NatGatewayId"], addresses or (net.subnet_cidr(nat_subnet) or INTERNET,)),
                 nacl.EPHEMERAL["nat"])]
    for hop_subnet, hop_peer, hop_ports in hops:
        verdict = nacl.connection(net.network_acls, client.vpc_id, hop_subnet, hop_peer, hop_ports, "", to, port)
        if not verdict.allowed:
            return Verdict(False, verdict.reason)
    return None


# -- the paths --------------------------------------------------------------------------------------------
def connect(net: Network, source: Node, dest: Node, port: int) -> Verdict:
    """Whether a TCP connection from ``source`` to ``dest``:``port`` is carried, and the deciding rule."""
    if source.vpc_id is not None and source.vpc_id == dest.vpc_id:
        inbound = net.allows(dest.group_ids, port, source)
        if not inbound:
            return Verdict(False, f"{_names(net, dest.group_ids)}: no inbound rule for tcp {port} from "
                                  f"{_names(net, source.group_ids)} ({source.private_ip})")
        dest_cidrs = [net.subnet_cidr(s) or "" for s in dest.subnet_ids]
        outbound = net.allows(source.group_ids, port, dest, egress=True, peer_cidrs=dest_cidrs)
        if not outbound:
            return Verdict(False, f"{_names(net, source.group_ids)}: no outbound rule for tcp {port} to "
                                  f"{dest.name}")
        return _acls_between(net, source, dest, port) or Verdict(True, inbound)
    if source.vpc_id is not None:  # from another VPC: out through its way out, in at the public address
        return connect_public(net, source, dest, port)
    return _from_internet(net, source, dest, port)


def connect_public(net: Network, source: Node, dest: Node, port: int) -> Verdict:
    """A connection to ``dest``'s public address: it leaves the source's VPC through its way out (even when
    both sit in one VPC, the packets go through the internet gateway) and comes in from the address it left
    at (:func:`public_source`)."""
    if source.vpc_id is not None:
        destination = Node(dest.name, "internet", public_ip=dest.public_ip)
        verdicts = [_way_out(net, source, subnet, "", "", port, destination) for subnet in source.subnet_ids or ("",)]
        out = next((v for v in verdicts if not v.allowed), verdicts[0])
        if not out.allowed:
            return out
        source = public_source(net, source)
    return _from_internet(net, source, dest, port)


def public_source(net: Network, source: Node) -> Node:
    """Where a connection leaving ``source``'s VPC comes from on the internet: its public IP through an
    internet gateway, its NAT gateway's public IP through a NAT gateway (and from its ports)."""
    subnet = source.subnet_ids[0] if source.subnet_ids else ""
    route = net.internet_route(subnet, source.vpc_id)
    address, ports = None, _ephemeral(source)
    if route and route[0] == "nat":
        address, ports = net.nat_public_ip(route[1]), nacl.EPHEMERAL["nat"]
    elif route and route[0] == "igw":
        address = source.public_ip
    return Node(source.name, "internet", public_ip=address, ephemeral=ports)


def _from_internet(net: Network, source: Node, dest: Node, port: int) -> Verdict:
    """From the internet the only way in is the destination's public address through an internet gateway."""
    if not dest.public:
        what = "PubliclyAccessible is false" if dest.kind == "rds" else "no public IP"
        return Verdict(False, f"{dest.name} has no public address ({what}); it is reachable only inside "
                              f"{dest.vpc_id}")
    subnet = dest.subnet_ids[0] if dest.subnet_ids else ""
    route = net.internet_route(subnet, dest.vpc_id)
    if not route or route[0] != "igw":
        return Verdict(False, f"{subnet} has no 0.0.0.0/0 route to an attached internet gateway")
    inbound = net.allows(dest.group_ids, port, source)
    if not inbound:
        return Verdict(False, f"{_names(net, dest.group_ids)}: no inbound rule for tcp {port} from {_who(source)}")
    acls = nacl.connection(net.network_acls, dest.vpc_id, "", _peer(net, source, ""), _ephemeral(source), subnet,
                           _peer(net, dest, subnet), port)
    if not acls.allowed:
        return Verdict(False, acls.reason)
    return Verdict(True, f"{inbound}; {subnet} routes 0.0.0.0/0 to {route[1]}")


def api_path(net: Network, source: Node, service: str, region: str = "us-east-1") -> Verdict:
    """Whether ``source`` reaches the public endpoint of AWS ``service`` ('' = any internet address)."""
    if source.vpc_id is None:
        return Verdict(True, "outside any VPC: the service's public endpoint over the internet")
    if service:
        endpoint = net.interface_endpoint(source.vpc_id, service, region)
        if endpoint:
            node = Node(endpoint["VpcEndpointId"], "endpoint", endpoint["VpcId"],
                        tuple(endpoint.get("SubnetIds", [])), tuple(g["GroupId"] for g in endpoint.get("Groups", [])))
            inbound = net.allows(node.group_ids, HTTPS, source)
            where = f"interface endpoint {endpoint['VpcEndpointId']} (private DNS for the whole VPC)"
            if not inbound:
                return Verdict(False, f"{where}: {_names(net, node.group_ids)} has no inbound rule for tcp 443 "
                                      f"from {_names(net, source.group_ids)} ({source.private_ip})")
            cidrs = [net.subnet_cidr(s) or "" for s in node.subnet_ids]
            if not net.allows(source.group_ids, HTTPS, node, egress=True, peer_cidrs=cidrs):
                return Verdict(False, f"{where}: {_names(net, source.group_ids)} has no outbound rule for tcp 443")
            denied = _acls_between(net, source, node, HTTPS)
            if denied:
                return Verdict(False, f"{where}: {denied.reason}")
            return Verdict(True, f"{where}; {inbound}")
    verdicts = [_way_out(net, source, subnet, service, region) for subnet in source.subnet_ids or ("",)]
    return next((v for v in verdicts if not v.allowed), verdicts[0])


def _way_out(net: Network, source: Node, subnet: str, service: str, region: str, port: int = HTTPS,
             to: Node = YOUR_COMPUTER) -> Verdict:
    """How ``source`` leaves ``subnet`` for the internet: tcp ``port`` to ``to`` (an AWS endpoint: 443 to an
    address of AWS's, which only a rule open to every address is sure to hold; S3's are its prefix list's)."""
    table = net.route_table(subnet)
    table_id = table["RouteTableId"] if table else "no route table"
    prefix_list = net.service_prefix_list(service, region) if service == "s3" else None
    peer = _service_peer(service or to.name, prefix_list) if service or not to.public_ip else _peer(net, to, "")
    outbound = net.allows(source.group_ids, port, to, egress=True, service=prefix_list)
    if not outbound:
        also = f" or to the prefix list {prefix_list['PrefixListId']} ({prefix_list.get('PrefixListName')})" \
            if prefix_list else ""
        return Verdict(False, f"{_names(net, source.group_ids)}: no outbound rule for tcp {port} to "
                              f"{to.public_ip or '0.0.0.0/0'}{also}")
    if service == "s3" and table:
        gateway = net.gateway_endpoint(table_id, "s3", region)
        if gateway:
            denied = _acls_out(net, source, subnet, peer, port, None)
            if denied:
                return denied
            return Verdict(True, f"gateway endpoint {gateway['VpcEndpointId']} on {table_id}; {outbound}")
    route = net.internet_route(subnet, source.vpc_id)
    wanted = f"{service} " if service else ""
    if route and route[0] == "nat":
        return _acls_out(net, source, subnet, peer, port, route) or Verdict(
            True, f"{subnet} ({table_id}) routes 0.0.0.0/0 to {route[1]}")
    if route and route[0] == "igw":
        if source.kind == "instance" and source.public:
            return _acls_out(net, source, subnet, peer, port, None) or Verdict(
                True, f"{subnet} ({table_id}) routes 0.0.0.0/0 to {route[1]}; the instance has a public IP")
        who = "a Lambda function's network interfaces never get" if source.kind == "lambda" else "the caller has"
        return Verdict(False, f"{subnet} ({table_id}) routes 0.0.0.0/0 to {route[1]}, but {who} no public IP")
    return Verdict(False, f"{subnet} ({table_id}) has no route to the {wanted}endpoint: no NAT gateway, "
                          f"no internet gateway{', no endpoint for ' + service if service else ''}")


# -- nodes from describe-shaped records ------------------------------------------------------------------
def eni_address(net: Network, subnet_id: str, seed: str) -> str | None:
    """A stable private address in ``subnet_id`` for an interface AWS places (Lambda, RDS)."""
    import hashlib

    cidr = net.subnet_cidr(subnet_id)
    if not cidr:
        return None
    block = ipaddress.IPv4Network(cidr)
    index = 4 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % max(1, block.num_addresses - 5)
    return str(block.network_address + index)


def instance_node(instance: dict) -> Node:
    """An EC2 instance from DescribeInstances."""
    groups = {g["GroupId"] for g in instance.get("SecurityGroups", [])}
    groups |= {g["GroupId"] for nic in instance.get("NetworkInterfaces", []) for g in nic.get("Groups", [])}
    subnet = instance.get("SubnetId")
    public = instance.get("PublicIpAddress")
    return Node(instance["InstanceId"], "instance", instance.get("VpcId"), (subnet,) if subnet else (),
                tuple(sorted(groups)), instance.get("PrivateIpAddress"), bool(public), public)


def function_node(net: Network, config: dict) -> Node:
    """A Lambda function from GetFunctionConfiguration: outside every VPC unless it has VpcConfig subnets."""
    vpc = config.get("VpcConfig") or {}
    subnets = tuple(vpc.get("SubnetIds") or ())
    if not subnets:
        return Node(config["FunctionName"], "lambda")
    first = net.subnet(subnets[0])
    return Node(config["FunctionName"], "lambda", first["VpcId"] if first else vpc.get("VpcId"), subnets,
                tuple(vpc.get("SecurityGroupIds") or ()), eni_address(net, subnets[0], config["FunctionArn"]))


def db_node(net: Network, db: dict) -> Node:
    """An RDS DB instance from DescribeDBInstances; its interface is in the subnet of its zone, listed first."""
    group = db.get("DBSubnetGroup") or {}
    listed = group.get("Subnets", [])
    zone = db.get("AvailabilityZone")
    ordered = sorted(listed, key=lambda s: (s.get("SubnetAvailabilityZone") or {}).get("Name") != zone)
    subnets = tuple(s["SubnetIdentifier"] for s in ordered)
    first = net.subnet(subnets[0]) if subnets else None
    return Node(db["DBInstanceIdentifier"], "rds", group.get("VpcId") or (first["VpcId"] if first else None),
                subnets, tuple(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])),
                eni_address(net, subnets[0], db["DBInstanceIdentifier"]) if subnets else None,
                bool(db.get("PubliclyAccessible")))

"""Steps 1-3: the VPC, its subnets and routes, the VPC endpoints, security groups, the DB subnet group.

Lambdas in private subnets have no route to the internet, so on AWS they reach Secrets Manager and S3
only through VPC endpoints (or a NAT gateway, which costs money by the hour). The tutorial leaves this
out, and its Lambdas would time out; this lab creates an S3 gateway endpoint and a Secrets Manager
interface endpoint with private DNS.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
from botocore.exceptions import ClientError, WaiterError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from labkit import myip
from labkit.errors import AddressUnknown, StepError, if_exists
from labkit.iam import policy_mode
from labkit.lookups import engine_version, security_group_ids, subnet_ids, vpc_ids
from labkit.names import DB_ENGINE, DB_INSTANCE_CLASS, DB_SUBNET_GROUP, INSTANCE_TYPE, SG_NAMES, SUBNET_KEYS
from labkit.names import lab_resource as _n
from labkit.session import Lab
from labkit.tagging import claim, ec2_find, error_code, name_tag, tag_spec

__all__ = ["DB_SUBNET_GROUP", "SG_NAMES", "SUBNETS", "VPC_CIDR", "choose_zones", "create_db_subnet_group", "create_security_groups",
           "create_vpc", "db_subnet_group_frame", "network_acls_frame", "network_frame", "security_group_ids",
           "security_groups_frame", "subnet_ids", "vpc_ids"]

VPC_CIDR = "10.0.0.0/16"
APP_RULE = "Flask app"  # the description of the app port's rule
SUBNETS = dict(zip(SUBNET_KEYS, (("10.0.1.0/24", 0, True), ("10.0.2.0/24", 1, True),
                                 ("10.0.11.0/24", 0, False), ("10.0.12.0/24", 1, False))))
# "Eventual consistency in the Amazon EC2 API": right after a create, a call that names the new resource (attach,
# associate, a route, a rule, a waiter's describe) may answer that it does not exist yet. Such an answer is tried
# again with exponential backoff (1, 2, 4 ... 16 s on AWS) for up to EVENTUAL_SECONDS; any other error at once.
EVENTUAL = frozenset({"InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
                      "InvalidRouteTableID.NotFound", "InvalidInternetGatewayID.NotFound",
                      "InvalidVpcEndpointId.NotFound", "InvalidRouteTableId.NotFound"})
EVENTUAL_SECONDS = 120
T = TypeVar("T")


def _not_there_yet(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return error_code(exc) in EVENTUAL
    if isinstance(exc, WaiterError):  # a waiter's describe answered the same (WaiterError keeps that answer)
        return (exc.last_response or {}).get("Error", {}).get("Code") in EVENTUAL
    return False


def settled(lab: Lab, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, tried again while EC2 answers that a resource it names does not exist yet."""
    base = lab.target.poll_seconds / 15  # 1 s on AWS, a few ms on the local cloud (never eventually consistent)
    return Retrying(retry=retry_if_exception(_not_there_yet), stop=stop_after_delay(EVENTUAL_SECONDS),
                    wait=wait_exponential(multiplier=base, max=16 * base), reraise=True)(call, *args, **kwargs)


# -- step 1 ------------------------------------------------------------------------------------------------
def ensure_vpc(lab: Lab) -> dict:
    ec2 = lab.client("ec2")
    vpc = ec2_find(lab, "Vpcs", _n(lab, "vpc"))
    if vpc is None:
        vpc = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=tag_spec(lab, "vpc", _n(lab, "vpc")))["Vpc"]
        settled(lab, ec2.get_waiter("vpc_available").wait, VpcIds=[vpc["VpcId"]])
    # Private DNS for interface endpoints needs both DNS attributes.
    settled(lab, ec2.modify_vpc_attribute, VpcId=vpc["VpcId"], EnableDnsSupport={"Value": True})
    settled(lab, ec2.modify_vpc_attribute, VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
    return vpc


def choose_zones(lab: Lab, count: int = 2) -> list[str]:
    """``count`` Availability Zones (standard zones, no opt-in needed) where both the EC2 instance type and
    the RDS instance class (engine and version as step 4 creates them) are offered; the first by name.

    Not every zone offers every type (us-east-1e has no t3.micro), and Local or Wavelength Zones are zones too.
    """
    ec2, rds = lab.client("ec2"), lab.client("rds")
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones(Filters=[
        {"Name": "state", "Values": ["available"]}, {"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"] if z.get("OptInStatus", "opt-in-not-required") == "opt-in-not-required"]
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [INSTANCE_TYPE]}])
    for_ec2 = {o["Location"] for page in pages for o in page["InstanceTypeOfferings"]}
    pages = rds.get_paginator("describe_orderable_db_instance_options").paginate(
        Engine=DB_ENGINE, EngineVersion=engine_version(lab), DBInstanceClass=DB_INSTANCE_CLASS, Vpc=True)
    for_rds = {z["Name"] for page in pages for o in page["OrderableDBInstanceOptions"]
               for z in o.get("AvailabilityZones", [])}
    chosen = sorted(z for z in zones if z in for_ec2 and z in for_rds)[:count]
    if len(chosen) < count:
        raise StepError(1, f"{lab.region} has {len(chosen)} Availability Zone(s) offering both {INSTANCE_TYPE} and "
                           f"{DB_INSTANCE_CLASS} ({', '.join(chosen) or 'none'}); the lab needs {count}",
                        "use another region (the `region` parameter, or --region)")
    return chosen


def ensure_subnets(lab: Lab, vpc_id: str) -> dict[str, dict]:
    ec2 = lab.client("ec2")
    found = {key: ec2_find(lab, "Subnets", _n(lab, key)) for key in SUBNETS}
    zones = choose_zones(lab) if None in found.values() else []
    subnets = {}
    for key, (cidr, zone, public) in SUBNETS.items():
        subnet = found[key]
        if subnet is None:
            subnet = settled(lab, ec2.create_subnet, VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zones[zone],
                             TagSpecifications=tag_spec(lab, "subnet", _n(lab, key)))["Subnet"]
        if public:
            settled(lab, ec2.modify_subnet_attribute, SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
        subnets[key] = subnet
    settled(lab, ec2.get_waiter("subnet_available").wait, SubnetIds=[s["SubnetId"] for s in subnets.values()])
    return subnets


def ensure_internet_gateway(lab: Lab, vpc_id: str) -> dict:
    ec2 = lab.client("ec2")
    igw = ec2_find(lab, "InternetGateways", _n(lab, "igw"))
    if igw is None:
        igw = ec2.create_internet_gateway(
            TagSpecifications=tag_spec(lab, "internet-gateway", _n(lab, "igw")))["InternetGateway"]
    if not any(a.get("VpcId") == vpc_id for a in igw.get("Attachments", [])):
        settled(lab, ec2.attach_internet_gateway, InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
    return igw


def _ensure_route_table(lab: Lab, vpc_id: str, key: str, subnet_ids: list[str]) -> dict:
    ec2 = lab.client("ec2")
    table = ec2_find(lab, "RouteTables", _n(lab, key))
    if table is None:
        table = settled(lab, ec2.create_route_table, VpcId=vpc_id,
                        TagSpecifications=tag_spec(lab, "route-table", _n(lab, key)))["RouteTable"]
    associated = {a.get("SubnetId") for a in table.get("Associations", [])}
    for subnet_id in subnet_ids:
        if subnet_id not in associated:
            settled(lab, ec2.associate_route_table, RouteTableId=table["RouteTableId"], SubnetId=subnet_id)
    return table


def ensure_route_tables(lab: Lab, vpc_id: str, subnets: dict[str, dict], igw_id: str) -> dict[str, dict]:
    ec2 = lab.client("ec2")
    public = _ensure_route_table(lab, vpc_id, "public-rt", [subnets[k]["SubnetId"] for k in ("public-a", "public-b")])
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in public.get("Routes", [])):
        settled(lab, ec2.create_route, RouteTableId=public["RouteTableId"], DestinationCidrBlock="0.0.0.0/0",
                GatewayId=igw_id)
    private = _ensure_route_table(lab, vpc_id, "private-rt",
                                  [subnets[k]["SubnetId"] for k in ("private-a", "private-b")])
    return {"public": public, "private": private}


def ensure_security_group(lab: Lab, vpc_id: str, role: str, description: str) -> str:
    ec2 = lab.client("ec2")
    name = SG_NAMES[role]
    found = ec2.describe_security_groups(Filters=[*lab.tag_filter(), {"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    return settled(lab, ec2.create_security_group, GroupName=name, Description=description, VpcId=vpc_id,
                   TagSpecifications=tag_spec(lab, "security-group", name))["GroupId"]


def ensure_vpc_endpoints(lab: Lab, vpc_id: str, subnets: dict[str, dict], private_rt: str) -> dict[str, dict]:
    ec2 = lab.client("ec2")
    sg = ensure_security_group(lab, vpc_id, "endpoints", "HTTPS to VPC interface endpoints from the Lambdas")
    wanted: dict[str, dict[str, Any]] = {
        "s3": {"VpcEndpointType": "Gateway", "ServiceName": f"com.amazonaws.{lab.region}.s3",
               "RouteTableIds": [private_rt]},
        "secretsmanager": {"VpcEndpointType": "Interface",
                           "ServiceName": f"com.amazonaws.{lab.region}.secretsmanager",
                           "SubnetIds": [subnets["private-a"]["SubnetId"], subnets["private-b"]["SubnetId"]],
                           "SecurityGroupIds": [sg], "PrivateDnsEnabled": True},
    }
    endpoints = {}
    for key, spec in wanted.items():
        found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "service-name", "Values": [spec["ServiceName"]]}]
                                           )["VpcEndpoints"]
        live = [e for e in found if e.get("State", "").lower() not in ("deleted", "deleting")]
        if live:
            endpoints[key] = live[0]
            continue
        endpoints[key] = settled(lab, ec2.create_vpc_endpoint, VpcId=vpc_id, **spec, TagSpecifications=tag_spec(
            lab, "vpc-endpoint", _n(lab, f"{key}-endpoint")))["VpcEndpoint"]
    return endpoints


def create_vpc(lab: Lab) -> dict[str, Any]:
    """Step 1: VPC, 2 public + 2 private subnets in two AZs, internet gateway, route tables, VPC endpoints."""
    vpc = ensure_vpc(lab)
    subnets = ensure_subnets(lab, vpc["VpcId"])
    igw = ensure_internet_gateway(lab, vpc["VpcId"])
    tables = ensure_route_tables(lab, vpc["VpcId"], subnets, igw["InternetGatewayId"])
    endpoints = ensure_vpc_endpoints(lab, vpc["VpcId"], subnets, tables["private"]["RouteTableId"])
    policy_mode(lab)  # a mode given with the lab is stored on its VPC from the start
    return {"vpc_id": vpc["VpcId"], "subnets": {k: s["SubnetId"] for k, s in subnets.items()},
            "internet_gateway_id": igw["InternetGatewayId"],
            "route_tables": {k: t["RouteTableId"] for k, t in tables.items()},
            "endpoints": {k: e["VpcEndpointId"] for k, e in endpoints.items()}}


# -- step 2 ------------------------------------------------------------------------------------------------
def create_db_subnet_group(lab: Lab) -> dict:
    """Step 2: the DB subnet group over the two private subnets only."""
    rds = lab.client("rds")
    ids = vpc_ids(lab)
    private = [ids["subnets"]["private-a"], ids["subnets"]["private-b"]]
    if claim(lab, 2, "db subnet group", DB_SUBNET_GROUP):
        group = rds.describe_db_subnet_groups(DBSubnetGroupName=DB_SUBNET_GROUP)["DBSubnetGroups"][0]
        if sorted(s["SubnetIdentifier"] for s in group["Subnets"]) != sorted(private):
            group = rds.modify_db_subnet_group(DBSubnetGroupName=DB_SUBNET_GROUP, SubnetIds=private)["DBSubnetGroup"]
        return group
    return rds.create_db_subnet_group(DBSubnetGroupName=DB_SUBNET_GROUP, SubnetIds=private, Tags=lab.tags,
                                      DBSubnetGroupDescription="Private subnets for the orders database"
                                      )["DBSubnetGroup"]


# -- step 3 ------------------------------------------------------------------------------------------------
def _allow(lab: Lab, group_id: str, port: int, source: str | None = None, cidr: str | None = None,
           description: str = "") -> None:
    ec2 = lab.client("ec2")
    permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if source:
        permission["UserIdGroupPairs"] = [{"GroupId": source, "Description": description}]
    else:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": description}]
    try:
        settled(lab, ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[permission])
    except ClientError as exc:
        if error_code(exc) != "InvalidPermission.Duplicate":
            raise


def _close_port_80(lab: Lab, group_id: str) -> None:
    """Earlier versions of the lab opened port 80, where nothing listens: close it on a re-run."""
    ec2 = lab.client("ec2")
    group = settled(lab, ec2.describe_security_groups, GroupIds=[group_id])["SecurityGroups"][0]
    stale = [p for p in group.get("IpPermissions", []) if p.get("FromPort") == 80 and p.get("ToPort") == 80]
    if stale:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=stale)


def _app_rule_from(lab: Lab, group_id: str, port: int, cidr: str) -> None:
    """The app port open from ``cidr`` only: a rule the lab made earlier from another CIDR (a re-run with another
    ``app_cidr``, such as "my-ip") is revoked once the new one is in."""
    _allow(lab, group_id, port, cidr=cidr, description=APP_RULE)
    ec2 = lab.client("ec2")
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    stale = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": r["CidrIp"]}]}
             for p in group.get("IpPermissions", []) if p.get("FromPort") == port and p.get("ToPort") == port
             for r in p.get("IpRanges", []) if r.get("Description") == APP_RULE and r.get("CidrIp") != cidr]
    if stale:
        ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=stale)


def allow_from_group(lab: Lab, group_id: str, port: int, source: str, description: str) -> None:
    """Let TCP ``port`` into ``group_id`` from members of the group ``source`` (no error if already allowed)."""
    _allow(lab, group_id, port, source=source, description=description)


def create_security_groups(lab: Lab) -> dict[str, str]:
    """Step 3: EC2 (the app port from ``app_cidr``, "my-ip" for your address /32; nothing listens on 80, so it
    stays closed; 22 only if asked), Lambda, RDS (3306 from those two groups only, by group), and the endpoint
    group (443 from the Lambda and EC2 groups: private DNS covers the whole VPC)."""
    vpc_id = vpc_ids(lab)["vpc_id"]
    groups = {
        "ec2": ensure_security_group(lab, vpc_id, "ec2", "Flask app on EC2: HTTP and the app port"),
        "lambda": ensure_security_group(lab, vpc_id, "lambda", "Order Lambdas: outbound to RDS and endpoints"),
        "rds": ensure_security_group(lab, vpc_id, "rds", "MySQL from the EC2 and Lambda groups only"),
        "endpoints": ensure_security_group(lab, vpc_id, "endpoints", "HTTPS to VPC interface endpoints"),
    }
    config = lab.config
    try:  # "my-ip": your address /32, as the console's "My IP" source
        app_cidr = myip.resolve_cidr(lab, config.app_cidr)  # never empty: LabConfig checks it
        ssh_cidr = myip.resolve_cidr(lab, config.ssh_cidr) if config.ssh_cidr else None
    except AddressUnknown as exc:
        raise StepError(3, f"app_cidr/ssh_cidr {myip.MY_IP!r}: {exc}", exc.hint) from None
    _app_rule_from(lab, groups["ec2"], config.app_port, app_cidr)
    _close_port_80(lab, groups["ec2"])
    if ssh_cidr:
        _allow(lab, groups["ec2"], 22, cidr=ssh_cidr, description="SSH (asked for)")
    _allow(lab, groups["rds"], 3306, source=groups["ec2"], description="MySQL from the app instance")
    _allow(lab, groups["rds"], 3306, source=groups["lambda"], description="MySQL from the Lambdas")
    _allow(lab, groups["endpoints"], 443, source=groups["lambda"], description="HTTPS from the Lambdas")
    # Private DNS sends every Secrets Manager call in the VPC to the endpoint, the instance's too (step 6 reads
    # the database password there): without this rule those calls hang.
    _allow(lab, groups["endpoints"], 443, source=groups["ec2"], description="HTTPS from the app instance")
    return groups


# -- tables ------------------------------------------------------------------------------------------------
def network_frame(lab: Lab) -> pd.DataFrame:
    """The lab's VPC, subnets, gateway, route tables and endpoints, one row each."""
    ec2 = lab.client("ec2")
    rows = []
    for vpc in ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]:
        rows.append({"kind": "vpc", "name": name_tag(vpc), "id": vpc["VpcId"], "detail": vpc["CidrBlock"]})
    for s in sorted(ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"], key=name_tag):
        rows.append({"kind": "subnet", "name": name_tag(s), "id": s["SubnetId"],
                     "detail": f"{s['CidrBlock']} {s['AvailabilityZone']} "
                               f"{'public' if s.get('MapPublicIpOnLaunch') else 'private'}"})
    for igw in ec2.describe_internet_gateways(Filters=lab.tag_filter())["InternetGateways"]:
        rows.append({"kind": "internet gateway", "name": name_tag(igw), "id": igw["InternetGatewayId"],
                     "detail": ", ".join(a["VpcId"] for a in igw.get("Attachments", []))})
    for t in sorted(ec2.describe_route_tables(Filters=lab.tag_filter())["RouteTables"], key=name_tag):
        routes = ", ".join(f"{r.get('DestinationCidrBlock', r.get('DestinationPrefixListId'))}->"
                           f"{r.get('GatewayId', r.get('NatGatewayId', '?'))}" for r in t.get("Routes", []))
        rows.append({"kind": "route table", "name": name_tag(t), "id": t["RouteTableId"], "detail": routes})
    ids = [v["VpcId"] for v in ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]]
    if ids:
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": ids}])["VpcEndpoints"]:
            rows.append({"kind": f"{e['VpcEndpointType'].lower()} endpoint", "name": name_tag(e),
                         "id": e["VpcEndpointId"], "detail": e["ServiceName"]})
    return pd.DataFrame(rows, columns=["kind", "name", "id", "detail"])


def security_groups_frame(lab: Lab) -> pd.DataFrame:
    """Every inbound rule of the lab's security groups: who may reach what."""
    ec2 = lab.client("ec2")
    groups = ec2.describe_security_groups(Filters=lab.tag_filter())["SecurityGroups"]
    names = {g["GroupId"]: g["GroupName"] for g in groups}
    rows = []
    for group in sorted(groups, key=lambda g: g["GroupName"]):
        for perm in group.get("IpPermissions", []):
            sources = [names.get(p["GroupId"], p["GroupId"]) for p in perm.get("UserIdGroupPairs", [])]
            sources += [r["CidrIp"] for r in perm.get("IpRanges", [])]
            for source in sources:
                rows.append({"group": group["GroupName"], "port": perm.get("FromPort"), "from": source})
        if not group.get("IpPermissions"):
            rows.append({"group": group["GroupName"], "port": None, "from": "(no inbound rules)"})
    frame = pd.DataFrame(rows, columns=["group", "port", "from"])
    frame["port"] = frame["port"].astype("Int64")  # a group without rules has no port: a blank, not NaN
    return frame


PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
ACL_COLUMNS = ["network acl", "subnets", "direction", "rule", "protocol", "ports", "cidr", "action"]


def network_acls_frame(lab: Lab) -> pd.DataFrame:
    """The network ACLs of the lab's subnets, each rule in the order AWS applies them (inbound, then outbound; by
    rule number, ``*`` last): the first rule that matches a packet decides."""
    ec2 = lab.client("ec2")
    subnets = {s["SubnetId"]: name_tag(s) or s["SubnetId"] for s in ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]}
    if not subnets:
        return pd.DataFrame(columns=ACL_COLUMNS)
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": list(subnets)}])["NetworkAcls"]
    rows = []
    for acl in sorted(acls, key=lambda a: (not a.get("IsDefault"), a["NetworkAclId"]), reverse=True):
        label = f"{name_tag(acl) or ('default' if acl.get('IsDefault') else '(no name)')} ({acl['NetworkAclId']})"
        on = ", ".join(sorted(subnets[a["SubnetId"]] for a in acl.get("Associations", []) if a.get("SubnetId") in subnets))
        for entry in sorted(acl.get("Entries", []), key=lambda e: (e["Egress"], e["RuleNumber"])):
            ports = entry.get("PortRange")
            rows.append({"network acl": label, "subnets": on, "direction": "outbound" if entry["Egress"] else "inbound",
                         "rule": "*" if entry["RuleNumber"] >= 32767 else str(entry["RuleNumber"]),
                         "protocol": PROTOCOLS.get(str(entry["Protocol"]), str(entry["Protocol"])),
                         "ports": "all" if not ports else str(ports["From"]) if ports["From"] == ports["To"]
                         else f"{ports['From']}-{ports['To']}",
                         "cidr": entry.get("CidrBlock") or entry.get("Ipv6CidrBlock"), "action": entry["RuleAction"]})
    return pd.DataFrame(rows, columns=ACL_COLUMNS)


def db_subnet_group_frame(lab: Lab) -> pd.DataFrame:
    """The DB subnet group's subnets, with their zones and whether each is private."""
    group = if_exists(lambda: lab.client("rds").describe_db_subnet_groups(
        DBSubnetGroupName=DB_SUBNET_GROUP)["DBSubnetGroups"][0], f"reading the DB subnet group {DB_SUBNET_GROUP}")
    if group is None:
        return pd.DataFrame(columns=["subnet group", "subnet", "zone", "private"])
    private = subnet_ids(lab, public=False)
    return pd.DataFrame([{"subnet group": group["DBSubnetGroupName"], "subnet": s["SubnetIdentifier"],
                          "zone": s["SubnetAvailabilityZone"]["Name"], "private": s["SubnetIdentifier"] in private}
                         for s in group["Subnets"]])

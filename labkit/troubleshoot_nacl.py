"""Notebook 15's network ACL case, "the return traffic": a network ACL on the private subnets that lets the
database's and the endpoint's ports in, but not the replies out.

Someone locked the private subnets down to the ports the system uses: MySQL (3306) and HTTPS (443) in from the
VPC, the replies to the subnets' own clients in (1024-65535), MySQL and HTTPS out. Network ACLs are stateless:
the database's and the endpoint's replies leave their subnet to the client's *ephemeral* port (a Lambda function's
are 1024-65535), and no outbound rule allows that, so every connection that crosses from one private subnet to the
other times out (between two interfaces of one subnet no ACL applies: on AWS some invocations work, which is
worse). Unlike the security-group cases this one breaks the whole private tier, order-validator included: a
network ACL is the subnet's, not the function's. The fix is one rule; :func:`remove_private_acl` (cleanup) puts the
subnets back on the VPC's default ACL.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from labkit.names import lab_resource
from labkit.network import VPC_CIDR, network_acls_frame, subnet_ids, vpc_ids
from labkit.session import Lab
from labkit.tagging import ec2_find, tag_spec

__all__ = ["ACL_KEY", "LESSON_RULES", "acl_name", "break_private_acl", "private_acl", "private_acl_frame",
           "remove_private_acl"]

ACL_KEY = "private-nacl"
ANYWHERE = "0.0.0.0/0"
# (rule number, egress, (from port, to port), CIDR): all TCP, all allow
LESSON_RULES = (
    (100, False, (3306, 3306), VPC_CIDR),      # MySQL in, from the VPC
    (110, False, (443, 443), VPC_CIDR),        # HTTPS in (the Secrets Manager endpoint), from the VPC
    (120, False, (1024, 65535), ANYWHERE),     # the replies to the subnets' own clients
    (100, True, (3306, 3306), VPC_CIDR),       # MySQL out
    (110, True, (443, 443), ANYWHERE),         # HTTPS out (S3 through its gateway endpoint, the endpoint)
)


def acl_name(lab: Lab) -> str:
    return lab_resource(lab, ACL_KEY)


def private_acl(lab: Lab) -> dict[str, Any] | None:
    """The case's network ACL, None while it does not exist."""
    return ec2_find(lab, "NetworkAcls", acl_name(lab))


def _entry(number: int, egress: bool, ports: tuple[int, int], cidr: str) -> dict[str, Any]:
    return {"RuleNumber": number, "Protocol": "6", "RuleAction": "allow", "Egress": egress, "CidrBlock": cidr,
            "PortRange": {"From": ports[0], "To": ports[1]}}


def _same(entry: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(entry.get(key) == value for key, value in wanted.items())


def break_private_acl(lab: Lab) -> str:
    """Put the private subnets on the case's ACL with exactly :data:`LESSON_RULES` (again after a fix); its id."""
    ec2 = lab.client("ec2")
    acl = private_acl(lab)
    if acl is None:
        acl = ec2.create_network_acl(VpcId=vpc_ids(lab)["vpc_id"],
                                     TagSpecifications=tag_spec(lab, "network-acl", acl_name(lab)))["NetworkAcl"]
    acl_id: str = acl["NetworkAclId"]
    wanted = [_entry(*rule) for rule in LESSON_RULES]
    for entry in acl.get("Entries", []):  # a fix (or anything else) added since: taken back; "*" stays
        if entry["RuleNumber"] < 32767 and not any(_same(entry, w) for w in wanted):
            ec2.delete_network_acl_entry(NetworkAclId=acl_id, RuleNumber=entry["RuleNumber"], Egress=entry["Egress"])
    for rule in wanted:
        if not any(_same(entry, rule) for entry in acl.get("Entries", [])):
            ec2.create_network_acl_entry(NetworkAclId=acl_id, **rule)
    _associate(lab, sorted(subnet_ids(lab, public=False)), acl_id)
    return acl_id


def _associate(lab: Lab, subnets: list[str], acl_id: str) -> None:
    """Put ``subnets`` on ``acl_id`` (ReplaceNetworkAclAssociation: a subnet is always on exactly one ACL)."""
    ec2 = lab.client("ec2")
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])["NetworkAcls"]
    for acl in acls:
        for association in acl.get("Associations", []):
            if association.get("SubnetId") in subnets and acl["NetworkAclId"] != acl_id:
                ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"],
                                                    NetworkAclId=acl_id)


def remove_private_acl(lab: Lab) -> list[dict[str, str]]:
    """Put the private subnets back on the VPC's default ACL and delete the case's ACL; what was removed."""
    acl = private_acl(lab)
    if acl is None:
        return []
    ec2 = lab.client("ec2")
    default = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [acl["VpcId"]]},
                                                 {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    on_it = [a["SubnetId"] for a in acl.get("Associations", [])]
    if on_it:
        _associate(lab, on_it, default["NetworkAclId"])
    ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])
    return [{"kind": "network acl", "name": acl_name(lab)}]


def private_acl_frame(lab: Lab) -> pd.DataFrame:
    """The rules of the ACL the private subnets are on, in the order AWS applies them."""
    frame = network_acls_frame(lab)
    private = frame["subnets"].str.contains("private")
    return frame[private].reset_index(drop=True)

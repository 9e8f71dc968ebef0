"""Network ACLs as EC2 keeps them: what moto 5.2.5 records differently (the rules are enforced by the network model,
:mod:`labkit.network_acls` through :mod:`labkit.reachability`).

* A new custom ACL has AWS's two ``*`` rules (rule number 32767, deny all, inbound and outbound): it denies all
  until rules are added (moto's has no entries, so it showed empty and allowed nothing in particular).
* An entry's CIDR is kept in its canonical form ("if you specify 100.68.0.18/18, we modify it to 100.68.0.0/18").
* DeleteNetworkAclEntry (and ReplaceNetworkAclEntry) of a rule that does not exist answers
  ``InvalidNetworkAclEntry.NotFound`` ("no ingress entry with number 120", as EC2 words it); moto crashed.
* ReplaceNetworkAclAssociation of an unknown association answers ``InvalidAssociationID.NotFound``; moto crashed.
* DescribePrefixLists shows each AWS service prefix list's ``Cidrs`` (moto left them out): the network model reads
  S3's to judge a rule for S3's addresses.

What EC2 refuses in the entries' parameters is checked before moto sees them (:mod:`.validation`).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from labkit.localcloud.core.patches import Patch
from labkit.localcloud.ec2.exceptions import AssociationNotFound, NetworkAclEntryNotFound

LAST_RULE = 32767


def _canonical(cidr: str | None) -> str | None:
    if not cidr:
        return cidr
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        return cidr  # refused before moto by the validation rules; left as sent otherwise


def _with_star_rules(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, vpc_id: str, tags: Any = None, default: bool = False) -> Any:
        acl = original(self, vpc_id, tags=tags, default=default)
        if not default:
            for egress in (True, False):
                self.create_network_acl_entry(
                    network_acl_id=acl.id, rule_number=LAST_RULE, protocol="-1", rule_action="deny", egress=egress,
                    cidr_block="0.0.0.0/0", icmp_code=None, icmp_type=None, port_range_from=None, port_range_to=None,
                    ipv6_cidr_block=None)
        return acl
    return wrapper


def _canonical_entry(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, network_acl_id: str, rule_number: Any, protocol: str, rule_action: str, egress: Any,
                cidr_block: str, *args: Any, **kwargs: Any) -> Any:
        ipv6 = kwargs.get("ipv6_cidr_block")
        if ipv6:
            kwargs["ipv6_cidr_block"] = _canonical(ipv6)
        return original(self, network_acl_id, int(rule_number), str(protocol), rule_action, _flag(egress),
                        _canonical(cidr_block), *args, **kwargs)
    return wrapper


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _entry_found(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, network_acl_id: str, rule_number: Any, egress: Any) -> Any:
        acl = self.get_network_acl(network_acl_id)  # InvalidNetworkAclID.NotFound first
        number, out = int(rule_number), _flag(egress)
        if not any(e.rule_number == number and e.egress == out for e in acl.network_acl_entries):
            raise NetworkAclEntryNotFound(f"no {'egress' if out else 'ingress'} entry with number {number}")
        return original(self, network_acl_id, number, out)
    return wrapper


def _association_found(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, association_id: str, network_acl_id: str) -> Any:
        self.get_network_acl(network_acl_id)  # InvalidNetworkAclID.NotFound first
        if not any(association_id in acl._associations for acl in self.network_acls.values()):
            raise AssociationNotFound(f"The association ID '{association_id}' does not exist")
        return original(self, association_id, network_acl_id)
    return wrapper


def _cidrs(prefix_list: Any) -> list[str]:
    """The CIDRs of a prefix list's current version (AWS's own lists have no version number in moto)."""
    entries = prefix_list.entries or {}
    if not entries:
        return []
    current = entries.get(prefix_list.version) or entries[max(k for k in entries if k is not None)]
    return [entry["Cidr"] for entry in current or []]


def patches() -> list[Patch]:
    """The network ACL and prefix list patches."""
    from moto.ec2.models import managed_prefixes, network_acls

    backend = network_acls.NetworkAclBackend
    return [
        Patch(backend, "create_network_acl", "a new custom network ACL has AWS's two '*' rules (32767, deny all, "
              "both ways); moto 5.2.5's had none", _with_star_rules),
        Patch(backend, "create_network_acl_entry", "the entry's CIDR in its canonical form, as EC2 keeps it; the "
              "rule number and direction typed", _canonical_entry),
        Patch(backend, "delete_network_acl_entry", "a rule that does not exist answers InvalidNetworkAclEntry."
              "NotFound (moto 5.2.5 raised StopIteration: an HTML 500); ReplaceNetworkAclEntry deletes through it",
              _entry_found),
        Patch(backend, "replace_network_acl_association", "an unknown association answers InvalidAssociationID."
              "NotFound (moto 5.2.5 raised StopIteration)", _association_found),
        Patch(managed_prefixes.ManagedPrefixList, "cidrs", "DescribePrefixLists shows the list's Cidrs, as AWS "
              "does (moto 5.2.5 left them out)", lambda _missing: property(_cidrs), adds=True),
    ]

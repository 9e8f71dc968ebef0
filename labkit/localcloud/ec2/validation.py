"""What EC2 refuses in a network ACL entry's parameters that moto 5.2.5 accepts (CreateNetworkAclEntry's
documentation, with EC2's per-parameter answers).

* ``Protocol`` is a protocol number (``-1`` for all): a name is refused ("Invalid value 'tcp' for IP protocol.
  Unknown protocol."); the AWS CLI turns ``tcp`` into ``6`` before sending, boto3 does not.
* ``RuleNumber`` is 1-32766 ("The range 32767 to 65535 is reserved for internal use": the ``*`` rule is 32767, and
  "You can't delete a rule where the rule number is an asterisk").
* ``RuleAction`` is ``allow`` or ``deny``.
* TCP and UDP need ``PortRange``, ICMP needs ``Icmp`` ("Required if specifying protocol 6 (TCP) or 17 (UDP)";
  "Required if specifying protocol 1 (ICMP)"); a CIDR must read as one.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.core.validation import Adjust, Rule
from labkit.localcloud.ec2.exceptions import InvalidParameterValue, MissingParameter

FIRST_RULE, LAST_USER_RULE = 1, 32766
ACTIONS = ("allow", "deny")


def _protocol(value: Any) -> str:
    text = str(value)
    if text != "-1" and not (text.isdigit() and 0 <= int(text) <= 255):
        raise InvalidParameterValue(f"Invalid value '{text}' for IP protocol. Unknown protocol.")
    return text


def _rule_number(value: Any) -> None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not FIRST_RULE <= number <= LAST_USER_RULE:
        raise InvalidParameterValue(f"Value ({value}) for parameter ruleNumber is invalid. Rule numbers must be "
                                    f"between {FIRST_RULE} and {LAST_USER_RULE}.")


def _cidr(name: str, value: Any) -> None:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise InvalidParameterValue(f"Value ({value}) for parameter {name} is invalid. This is not a valid CIDR "
                                    "block.") from None


def _entry(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    given = given or {}
    protocol = _protocol(given.get("Protocol")) if given.get("Protocol") is not None else None
    if given.get("RuleNumber") is not None:
        _rule_number(given["RuleNumber"])
    action = given.get("RuleAction")
    if action is not None and action not in ACTIONS:
        raise InvalidParameterValue(f"Value ({action}) for parameter ruleAction is invalid. Expected: 'allow' or "
                                    "'deny'.")
    for name, member in (("cidrBlock", "CidrBlock"), ("ipv6CidrBlock", "Ipv6CidrBlock")):
        if given.get(member):
            _cidr(name, given[member])
    port_range = given.get("PortRange") or {}
    if protocol in ("6", "17") and (port_range.get("From") is None or port_range.get("To") is None):
        missing = "from" if port_range.get("From") is None else "to"
        raise MissingParameter(f"The request must contain the parameter portRange.{missing}")
    if protocol == "1" and (given.get("IcmpTypeCode") or {}).get("Type") is None:
        raise MissingParameter("The request must contain the parameter icmpTypeCode.type")


def _delete_entry(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    if given and given.get("RuleNumber") is not None:
        _rule_number(given["RuleNumber"])


def rules() -> Iterable[Rule | Adjust]:
    """EC2's rules for network ACL entries."""
    return [Rule("ec2", frozenset({"CreateNetworkAclEntry", "ReplaceNetworkAclEntry"}), _entry),
            Rule("ec2", frozenset({"DeleteNetworkAclEntry"}), _delete_entry)]

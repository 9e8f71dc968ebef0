"""Your computer's address, as AWS sees it: what the console's "My IP" puts in a security group rule.

On AWS it is what https://checkip.amazonaws.com (AWS's own service) answers: the public address your
connections leave your network from. The local cloud answers the same question at its own endpoint (the
address it sees your connections come from, ``127.0.0.1`` on this machine), so this module only asks, on
both targets. A rule for that address /32 lets your computer in and nothing else on the internet.
"""
from __future__ import annotations

import ipaddress
import time
import urllib.request
import weakref
from typing import Any

from labkit.errors import AddressUnknown

MY_IP = "my-ip"  # app_cidr / ssh_cidr: your address /32, as the console's "My IP" source
TIMEOUT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 60.0  # a failed look-up is not asked again for this long (a table asks per row)
_answers: weakref.WeakKeyDictionary[Any, tuple[str | None, str, float]] = weakref.WeakKeyDictionary()


def _ask(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        text = response.read(64).decode("ascii", errors="replace").strip()
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"the answer {text[:40]!r} is not an IPv4 address") from None


def lookup(lab: Any) -> tuple[str | None, str]:
    """``(address, "")`` or ``(None, why not)``; asked once per lab session (a failure again after a minute)."""
    cached = _answers.get(lab)
    if cached and (cached[0] or time.monotonic() - cached[2] < RETRY_AFTER_SECONDS):
        return cached[0], cached[1]
    url = lab.target.checkip_url()
    try:
        address, why = _ask(url), ""
    except (OSError, ValueError) as exc:  # no network, refused, timed out, an HTTP error, a strange answer
        address, why = None, f"{url} did not tell your address ({exc})"
    _answers[lab] = (address, why, time.monotonic())
    return address, why


def your_address(lab: Any) -> str:
    """Your computer's address on the internet (aws: https://checkip.amazonaws.com; local: the cloud's answer).

    Raises:
        AddressUnknown: the service could not be asked or gave no address.
    """
    address, why = lookup(lab)
    if address is None:
        raise AddressUnknown(why, "check this machine's internet connection, or give the CIDR yourself "
                                  "(for example app_cidr=\"203.0.113.7/32\")")
    return address


def resolve_cidr(lab: Any, cidr: str) -> str:
    """A rule's source as configured: ``"my-ip"`` becomes your address /32, any other CIDR stays."""
    return f"{your_address(lab)}/32" if cidr == MY_IP else cidr


def check_cidr_option(name: str, value: str | None) -> str | None:
    """Why ``value`` is not a valid ``name`` (a CIDR such as 203.0.113.7/32, or "my-ip"), else None."""
    if value is None or value == MY_IP:
        return None
    try:
        ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return f"{name} {value!r} is not an IPv4 CIDR"
    return None if "/" in value else f"{name} {value!r} has no prefix length"

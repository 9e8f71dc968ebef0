"""Instances on the lab's network: public IPs, each instance's own address, and what answers at its ports.

On AWS an instance's public IP is reached from the internet through the internet gateway, which hands the
packets to the instance's private address; its security groups decide what gets in: a port they do not allow
is dropped (the client times out), a port they allow and nothing listens on is refused by the instance's
kernel, a port they allow and the app listens on answers. Locally (see :mod:`labkit.localcloud.network.service` for
the whole design):

* every public IP moto hands out (an instance's auto-assigned address, an Elastic IP) is an address of the
  lab's block, so the address DescribeInstances shows is the one that is really reached;
* every instance has an address of its own in the block, where its processes' wildcard binds
  (``0.0.0.0:5000``, as the tutorial's app binds) land, so two instances (or two labs) never collide, and the
  instance's ``127.0.0.1`` reaches its own services as on a real machine; the hook lets no packet from outside
  the lab's block in there (``netlink.c``), so the own address is no way around the security groups;
* a process of an instance that binds the instance's loopback (``127.0.0.1``, ``::1``) lands on that own
  address too, not on the machine's shared loopback; its port is the instance's loopback only: the
  instance's own ``127.0.0.1`` reaches it, nothing answers at the public IP, and any other process of the
  cloud sent there is refused, as on AWS, where an instance's loopback does not exist from outside;
* at each public IP the model answers for the ports a student of this lab tries (:data:`TRIED_PORTS`, the
  app port, every port a rule of the instance's groups names or has named, every port the instance listens on): a
  :class:`~labkit.localcloud.network.listeners.Front` that forwards to the instance when its groups allow the port
  from the internet (and its subnet routes to an attached internet gateway) and the instance listens on it,
  a black hole (a browser times out) when they do not allow it, and nothing (refused) when they allow it and
  nothing listens. Any other port is refused, whatever the groups say. A public address with no running
  instance behind it (an Elastic IP not associated, a stopped instance's, a NAT gateway's) drops every
  modelled port; a released address is nobody's: refused.

Where a program outside the lab holds a port on the machine's wildcard address (``0.0.0.0:5000``: no
address of the lab's block can bind it then), the port is **remapped**, locally only: the instance's process
is bound to a free port of its own address, which its own ``127.0.0.1:5000`` and the rest of the lab still
reach as ``5000``, and the front opens on a free port of the public IP (as it does when only the public IP's
port is held) and moves back to the port once it is free. :meth:`Instances.summary` lists the public ports
remapped so, and labkit shows those URLs.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from labkit import reachability as rx
from labkit.localcloud.control import unprivileged_port_start
from labkit.localcloud.network.listeners import Front
from labkit.localcloud.network.wiring import listening_ports

log = logging.getLogger("labkit.localcloud.network")
PUBLIC_OFFSETS = range(128, 192)  # public IPs and Elastic IPs
OWN_OFFSETS = range(192, 250)  # each instance's own address
TRIED_PORTS = frozenset({22, 80, 443, 3306})  # the tutorial's EC2 group; no generic extras (they would hold the
# student's own wildcard binds, e.g. `python -m http.server 8080`, while the lab has instances)
RANGE_PORTS = 16  # a rule's port range up to this wide is modelled port by port, a wider one at its two ends
NO_HOST = ("stopping", "stopped", "shutting-down", "terminated")  # no kernel answers: every packet is dropped
Decide = Callable[[rx.Node, int], rx.Verdict]
Plan = dict[int, tuple[str, int] | None]  # port -> where it forwards, None: dropped; a port not in it: refused


def moto_public_addresses() -> set[str]:
    """Every public address moto's EC2 records hold now (network interfaces and Elastic IPs)."""
    from moto.ec2.models import ec2_backends

    held: set[str] = set()
    for regions in list(ec2_backends.values()):
        for backend in list(regions.values()):
            held |= {eni.public_ip for eni in list(backend.enis.values()) if eni.public_ip}
            held |= {eip.public_ip for eip in list(backend.addresses) if eip.public_ip}
    return held


def tried_ports() -> set[int]:
    """The ports modelled at every public address: :data:`TRIED_PORTS` and the lab's app port."""
    try:
        return set(TRIED_PORTS) | {int(os.environ.get("LABKIT_APP_PORT") or 5000)}
    except ValueError:
        return set(TRIED_PORTS)


def named_ports(net: rx.Network, group_ids: Iterable[str]) -> set[int]:
    """The TCP ports named in the inbound rules of ``group_ids`` (a wide range by its two ends)."""
    ports: set[int] = set()
    for group_id in group_ids:
        for perm in (net.group(group_id) or {}).get("IpPermissions", []):
            low, high = perm.get("FromPort", -1), perm.get("ToPort", -1)
            if str(perm.get("IpProtocol")) in ("tcp", "6") and 0 <= low <= high:
                ports |= set(range(low, high + 1)) if high - low < RANGE_PORTS else {low, high}
    return {p for p in ports if 0 < p < 65536}


class Instances:
    """Public addresses, own addresses, listening ports and what answers at public IPs."""

    def __init__(self, address: Callable[[int], str], probe: str, on_gone: Callable[[str], None] | None = None) -> None:
        self.address = address
        self.probe = probe  # an address of the block where nothing ever listens: a connection there is refused
        self.on_gone = on_gone  # told of an instance whose forwarded port turned out to have no listener any more
        self.lock = threading.RLock()
        self._cursor = 0
        self.own: dict[str, str] = {}  # instance id -> its own address
        self.ports: dict[str, set[int]] = {}  # instance id -> the ports it listens on (wildcard binds)
        self.loopback: dict[str, set[int]] = {}  # instance id -> the ports on its loopback only
        self.named: dict[str, set[int]] = {}  # instance id -> every port its groups' rules have named (kept)
        self.fronts: dict[tuple[str, int], Front] = {}  # (public address, port) -> what answers there
        self.owners: dict[str, str | None] = {}  # public address -> its instance (None: no running host)
        self.remapped: dict[tuple[str, int], int] = {}  # (instance id, port) -> where it is bound, when elsewhere
        self.unmodelled: dict[tuple[str, int], str] = {}  # (public address, port) -> why no front is there
        privileged = sorted(p for p in TRIED_PORTS if p < unprivileged_port_start()) if os.geteuid() else []
        if privileged:
            log.warning("ports %s cannot be modelled at the instances' public IPs: binding a port below %s needs "
                        "root (net.ipv4.ip_unprivileged_port_start); there they are refused, where AWS's groups "
                        "would drop them (a timeout)", ", ".join(map(str, privileged)), unprivileged_port_start())
    # -- what a restart keeps -----------------------------------------------------------------------------
    def saved(self) -> dict[str, Any]:
        """Each instance's own address, the public-address cursor, the ports its groups have named."""
        with self.lock:
            return {"own": dict(self.own), "cursor": self._cursor,
                    "named": {k: sorted(v) for k, v in self.named.items()}}

    def restore(self, saved: dict[str, Any]) -> None:
        with self.lock:
            self.own.update(saved.get("own", {}))
            self._cursor = int(saved.get("cursor", 0))
            self.named.update({k: set(v) for k, v in saved.get("named", {}).items()})

    # -- addresses ----------------------------------------------------------------------------------------
    def new_public_address(self, held: set[str]) -> str:
        """The next public address nothing holds (rotating, so a stopped and started instance gets a new one,
        as on AWS)."""
        with self.lock:
            for step in range(len(PUBLIC_OFFSETS)):
                candidate = self.address(PUBLIC_OFFSETS[(self._cursor + step) % len(PUBLIC_OFFSETS)])
                if candidate not in held:
                    self._cursor += step + 1
                    return candidate
        raise RuntimeError(f"all {len(PUBLIC_OFFSETS)} public addresses of the lab's block are in use")

    def own_address(self, instance_id: str) -> str:
        """The instance's own address (allocated on first use, kept until it is terminated)."""
        with self.lock:
            if instance_id not in self.own:
                used = set(self.own.values())
                free = next((self.address(o) for o in OWN_OFFSETS if self.address(o) not in used), None)
                if free is None:
                    raise RuntimeError(f"more than {len(OWN_OFFSETS)} instances in one local cloud")
                self.own[instance_id] = free
            return self.own[instance_id]

    def owner_of(self, ip: str) -> str | None:
        """The instance whose own address ``ip`` is."""
        return next((i for i, a in self.own.items() if a == ip), None)

    def local_target(self, instance_id: str, ip: str, port: int) -> tuple[str, int]:
        """Where the instance's own ``127.0.0.1:port`` leads: its own services, else the machine's loopback
        (the cloud's endpoint and the instance metadata service are reached there)."""
        with self.lock:
            listening = port in self.ports.get(instance_id, ()) or port in self.loopback.get(instance_id, ())
            if listening and instance_id in self.own:
                return self.target(instance_id, port)
        return ip, port

    def target(self, instance_id: str, port: int) -> tuple[str, int]:
        """Where a connection to the instance's ``port`` goes: its own address, at the port the instance's socket
        is really bound to (remapped, when a program outside the lab holds ``port``); while the instance has no
        socket for a port held so, a refusal (what answers there is not the instance's)."""
        with self.lock:
            own, remapped = self.own.get(instance_id), self.remapped.get((instance_id, port))
        if own and remapped:
            return own, remapped
        return (own, port) if own and _bindable((self.probe, port)) else (self.probe, 1)

    def remap(self, instance_id: str, port: int) -> int:
        """A free port of the instance's own address to bind instead of ``port`` when a program outside the lab
        holds ``port`` on the machine's wildcard address (then the probe address cannot bind it either); the
        same one again while it is free. 0 when the instance holds the port itself (at its own address, or at the
        port it was remapped to: the app started twice), and its bind fails with EADDRINUSE as it would on AWS."""
        if _bindable((self.probe, port)):
            return 0
        own = self.own_address(instance_id)
        with self.lock:
            before = self.remapped.get((instance_id, port))
            if before and not _bindable((own, before)):
                return 0  # a second bind of the same port on the same instance: refused, not given another
            chosen = before or _free_port(own)
            self.remapped[(instance_id, port)] = chosen
        log.warning("port %s is held outside the lab: %s's port %s is bound at %s:%s", port, instance_id, port,
                    own, chosen)
        return chosen

    # -- ports and fronts ---------------------------------------------------------------------------------
    def listened(self, instance_id: str, port: int, loopback: bool = False, bound: int | None = None) -> bool:
        """The instance listens on ``port`` now (on its loopback only when ``loopback``; really at ``bound`` when
        remapped); True when new."""
        with self.lock:  # the last listener on a port decides what it is (both cannot hold one address)
            mine, other = (self.loopback, self.ports) if loopback else (self.ports, self.loopback)
            ports, others = mine.setdefault(instance_id, set()), other.setdefault(instance_id, set())
            new = port not in ports or port in others or self.remapped.get((instance_id, port)) != bound
            ports.add(port)
            others.discard(port)
            if bound is None:
                self.remapped.pop((instance_id, port), None)
            else:
                self.remapped[(instance_id, port)] = bound
            return new

    def loopback_only(self, instance_id: str, port: int) -> bool:
        """True when the instance listens on ``port`` on its loopback and not on its own address."""
        with self.lock:
            return port in self.loopback.get(instance_id, ()) and port not in self.ports.get(instance_id, ())

    def refresh_all(self, instances: list[dict[str, Any]], held: Iterable[str], decide: Decide,
                    named: Callable[[dict[str, Any]], set[int]]) -> None:
        """Put what answers at every public address: each instance's public IP port by port as ``decide`` says
        about the path from your computer (``named``: the ports its groups' rules name); every other address
        moto holds (``held``) drops the tried ports; an address nobody holds any more answers nothing."""
        listening = listening_ports(list(self.own.values()))
        plans = {i["PublicIpAddress"]: (i["InstanceId"], self._plan(i, decide, named(i), listening))
                 for i in instances if i.get("PublicIpAddress")}
        idle: Plan = dict.fromkeys(tried_ports())
        for address in held:
            plans.setdefault(address, (None, idle))
        with self.lock:
            for address in set(self.owners) - set(plans):
                self._settle(address, None, {})
            for address, (owner, plan) in plans.items():
                self._settle(address, owner, plan)

    def refresh(self, instance: dict[str, Any], decide: Decide, named: set[int]) -> None:
        """The same for one instance (it listens on a new port, or a forwarded port lost its listener)."""
        public, instance_id = instance.get("PublicIpAddress"), instance["InstanceId"]
        own = self.own.get(instance_id)
        plan = self._plan(instance, decide, named, listening_ports([own] if own else []))
        with self.lock:
            for address in [a for a, owner in self.owners.items() if owner == instance_id and a != public]:
                self._settle(address, None, {})
            if public:
                self._settle(public, instance_id, plan)

    def _plan(self, instance: dict[str, Any], decide: Decide, named_now: set[int],
              listening: dict[str, set[int]]) -> Plan:
        """What answers at each modelled port of the instance's public IP."""
        instance_id = instance["InstanceId"]
        own = self.own.get(instance_id)
        with self.lock:
            mine, loopback = self.ports.setdefault(instance_id, set()), self.loopback.setdefault(instance_id, set())
            named = self.named.setdefault(instance_id, set())
            named |= named_now  # a revoked rule's port stays modelled: it is dropped again, not refused
            if instance.get("State", {}).get("Name") in NO_HOST:
                mine.clear()  # its processes have ended
                loopback.clear()
                for key in [k for k in self.remapped if k[0] == instance_id]:
                    del self.remapped[key]
                return dict.fromkeys(tried_ports() | named)
            ports = tried_ports() | named | mine | loopback
            bound = {port: self.remapped.get((instance_id, port), port) for port in ports}
            answering = listening.get(own, set()) - {bound[p] for p in loopback} if own else set()
        node = rx.instance_node(instance) if instance.get("VpcId") else None
        plan: Plan = {}
        for port in sorted(ports):
            verdict = decide(node, port) if node else rx.Verdict(False, "the instance is in no VPC")
            if not verdict.allowed:
                plan[port] = None
            elif bound[port] in answering:
                plan[port] = (str(own), bound[port])
            elif port in mine and not _bindable((self.probe, port)):  # held outside: refused, never the holder
                plan[port] = (self.probe, 1)
        return plan

    def _settle(self, address: str, owner: str | None, plan: Plan) -> None:
        """Make what answers at ``address`` match ``plan`` (with the lock held)."""
        for key in [k for k in self.fronts if k[0] == address and k[1] not in plan]:
            self.fronts.pop(key).close()  # refused from now on
        for key in [k for k in self.unmodelled if k[0] == address and k[1] not in plan]:
            del self.unmodelled[key]
        if not plan:
            self.owners.pop(address, None)
            return
        self.owners[address] = owner
        listened = self.ports.get(owner or "", set())
        for port, target in plan.items():
            try:
                self._settle_port((address, port), target, remap=port in listened)
            except OSError as exc:  # one port that cannot switch must not leave the others unsettled
                log.warning("cannot switch %s:%s to %s: %s (tried again at the next change)", address, port,
                            target or "a black hole", exc)

    def _settle_port(self, key: tuple[str, int], target: tuple[str, int] | None, remap: bool) -> None:
        front = self.fronts.get(key)
        if front is not None and front.address[1] != key[1]:  # remapped: back on its port once that is free
            front = self._reopen(key, front)
        if front is not None:
            front.point(target)
            return
        front = self._open_front(key, target, remap=remap)
        if front is not None:
            self.fronts[key] = front

    def _open_front(self, key: tuple[str, int], target: tuple[str, int] | None, remap: bool) -> Front | None:
        """The front at ``key`` (address, port); for a port the instance listens on, on a free port of the address
        when another program holds that one (remapped, locally only); None when it cannot open."""
        try:
            front = Front(key, target, source=key[0], on_refused=self._gone)
            self.unmodelled.pop(key, None)
            return front
        except OSError as exc:
            held = exc
        self.unmodelled[key] = unmodelled_reason(held)
        if not remap:  # a port nothing of the lab's listens on that cannot be bound: not modelled
            log.debug("cannot open %s:%s: %s", *key, held)
            return None
        try:
            front = Front((key[0], 0), target, source=key[0], on_refused=self._gone)
        except OSError as exc:
            log.error("cannot open %s:%s: %s; nor any other port: %s", *key, held, exc)
            return None
        log.warning("%s:%s cannot be bound (%s): it is at %s:%s", *key, self.unmodelled.pop(key), *front.address)
        return front

    def _reopen(self, key: tuple[str, int], front: Front) -> Front:
        """A remapped front moved back to its port, when nothing else holds it any more."""
        try:
            moved = Front(key, front.target, source=key[0], on_refused=self._gone)
        except OSError:
            return front
        self.fronts.pop(key).close()
        self.fronts[key] = moved
        log.info("%s:%s is free again", *key)
        return moved

    def _gone(self, address: tuple[str, int]) -> None:
        """A forwarded port's listener has gone (the app stopped): answer as the instance's kernel would now."""
        owner = self.owners.get(address[0])
        if owner and self.on_gone is not None:
            self.on_gone(owner)

    def forget(self, instance_id: str) -> None:
        """A terminated instance: nothing answers at its public IP, its own address is free."""
        with self.lock:
            for address in [a for a, owner in self.owners.items() if owner == instance_id]:
                self._settle(address, None, {})
            self.ports.pop(instance_id, None)
            self.loopback.pop(instance_id, None)
            self.named.pop(instance_id, None)
            self.own.pop(instance_id, None)
            for key in [k for k in self.remapped if k[0] == instance_id]:
                del self.remapped[key]

    def close(self) -> None:
        with self.lock:
            for address in list(self.owners):
                self._settle(address, None, {})
            for instance_id in list(set(self.own) | set(self.ports) | set(self.loopback) | set(self.named)):
                self.forget(instance_id)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            ports: dict[str, dict[str, Any]] = {
                a: {"instance": owner, "forwarded": [], "dropped": []} for a, owner in self.owners.items()}
            for (address, port), front in sorted(self.fronts.items()):
                ports[address]["forwarded" if front.target else "dropped"].append(port)
            return {"own_addresses": dict(self.own), "public_addresses": ports,
                    # public ip:port -> where your computer reaches it, where another program holds the port
                    "remapped": {f"{a}:{p}": f"{a}:{f.address[1]}" for (a, p), f in self.fronts.items()
                                 if f.address[1] != p},
                    # public ip:port -> why nothing of the model is there (what answers instead)
                    "not_modelled": {f"{a}:{p}": why for (a, p), why in sorted(self.unmodelled.items())
                                     if a in self.owners}}


def unmodelled_reason(exc: OSError) -> str:
    """Why a port could not be modelled at a public IP, and so what a connection there meets instead."""
    if exc.errno == errno.EACCES:
        return (f"not modelled: binding a port below {unprivileged_port_start()} needs root "
                "(net.ipv4.ip_unprivileged_port_start); refused here, where AWS would answer as the groups say")
    if exc.errno == errno.EADDRINUSE:
        return "answered by another program on this machine (it listens on the wildcard address), whatever the groups say"
    return f"not modelled: {exc.strerror or exc}"


def _bindable(address: tuple[str, int]) -> bool:
    """True when a server could listen at ``address`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
        return True


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
    return port

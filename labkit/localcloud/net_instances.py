"""Instances on the lab's network: public IPs, each instance's own address, and the app ports they open.

On AWS an instance's public IP is reached from the internet through the internet gateway, which hands the
packets to the instance's private address; its security groups decide what gets in. Locally (see
:mod:`labkit.localcloud.network` for the whole design):

* every public IP moto hands out (an instance's auto-assigned address, an Elastic IP) is an address of the
  lab's block, so the address DescribeInstances shows is the one that is really reached;
* every instance has an address of its own in the block, where its processes' wildcard binds
  (``0.0.0.0:5000``, as the tutorial's app binds) land, so two instances (or two labs) never collide, and the
  instance's ``127.0.0.1`` reaches its own services as on a real machine;
* a process of an instance that binds the instance's loopback (``127.0.0.1``, ``::1``) lands on that own
  address too, not on the machine's shared loopback; its port is the instance's loopback only: the
  instance's own ``127.0.0.1`` reaches it, no front opens at the public IP, and any other process of the
  cloud sent there is refused, as on AWS, where an instance's loopback does not exist from outside;
* for each port an instance listens on, the model keeps a :class:`~labkit.localcloud.net_listeners.Front` at
  the instance's public IP: a forwarder to the instance when its groups allow the port from the internet
  (and its subnet routes to an attached internet gateway), else a black hole, so a browser times out.

Where a program outside the lab holds a port on the machine's wildcard address (``0.0.0.0:5000``: no
address of the lab's block can bind it then), the port is **remapped**, locally only: the instance's process
is bound to a free port of its own address, which its own ``127.0.0.1:5000`` and the rest of the lab still
reach as ``5000``, and the front opens on a free port of the public IP (as it does when only the public IP's
port is held) and moves back to the port once it is free. :meth:`Instances.summary` lists the public ports
remapped so, and labkit shows those URLs.
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable

from labkit import reachability as rx
from labkit.localcloud.net_listeners import Front

log = logging.getLogger("labkit.localcloud.network")
PUBLIC_OFFSETS = range(128, 192)  # public IPs and Elastic IPs
OWN_OFFSETS = range(192, 250)  # each instance's own address


def moto_public_addresses() -> set[str]:
    """Every public address moto's EC2 records hold now (network interfaces and Elastic IPs)."""
    from moto.ec2.models import ec2_backends

    held: set[str] = set()
    for regions in list(ec2_backends.values()):
        for backend in list(regions.values()):
            held |= {eni.public_ip for eni in list(backend.enis.values()) if eni.public_ip}
            held |= {eip.public_ip for eip in list(backend.addresses) if eip.public_ip}
    return held


class Instances:
    """Public addresses, own addresses, listening ports and the fronts at public IPs."""

    def __init__(self, address: Callable[[int], str], probe: str) -> None:
        self.address = address
        self.probe = probe  # an address of the block where nothing ever listens: a connection there is refused
        self.lock = threading.RLock()
        self._cursor = 0
        self.own: dict[str, str] = {}  # instance id -> its own address
        self.ports: dict[str, set[int]] = {}  # instance id -> the ports it listens on (wildcard binds)
        self.loopback: dict[str, set[int]] = {}  # instance id -> the ports on its loopback only
        self.fronts: dict[tuple[str, int], Front] = {}  # (instance id, port) -> the front at its public IP
        self.remapped: dict[tuple[str, int], int] = {}  # (instance id, port) -> where it is bound, when elsewhere

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
        same one again while it is free. 0 when only the instance's own address is taken: the instance holds
        the port itself, and its bind fails as it would on AWS."""
        if _bindable((self.probe, port)):
            return 0
        own = self.own_address(instance_id)
        with self.lock:
            before = self.remapped.get((instance_id, port))
            chosen = before if before and _bindable((own, before)) else _free_port(own)
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

    def refresh(self, instance_id: str, instance: dict | None, decide: Callable[[rx.Node, int], rx.Verdict]) -> None:
        """Put the instance's fronts at its current public IP (none without one) and point each as ``decide``
        says about the path from your computer."""
        public = (instance or {}).get("PublicIpAddress")
        own = self.own.get(instance_id)
        node = rx.instance_node(instance) if instance and instance.get("VpcId") else None
        with self.lock:
            for key in [k for k in self.fronts if k[0] == instance_id and k[1] not in self.ports.get(instance_id, ())]:
                self.fronts.pop(key).close()  # a port now on the instance's loopback only
            for port in sorted(self.ports.get(instance_id, ())):
                key = (instance_id, port)
                front = self.fronts.get(key)
                if front is not None and (not public or front.address[0] != public):
                    self.fronts.pop(key).close()
                    front = None
                if not public or own is None:
                    continue
                if front is not None and front.address[1] != port:  # remapped: back on its port once that is free
                    front = self._reopen(key, front)
                if front is None:
                    front = self._open_front(instance_id, public, port)
                    if front is None:
                        continue
                    self.fronts[key] = front
                verdict = decide(node, port) if node else rx.Verdict(False, "the instance is in no VPC")
                if not verdict.allowed:
                    log.info("closed to the internet: %s:%s (%s): %s", public, port, instance_id, verdict.reason)
                front.point(self.target(instance_id, port) if verdict.allowed else None)

    def _reopen(self, key: tuple[str, int], front: Front) -> Front:
        """A remapped front moved back to the instance's port, when nothing else holds it any more."""
        try:
            moved = Front((front.address[0], key[1]))
        except OSError:
            return front
        self.fronts.pop(key).close()
        self.fronts[key] = moved
        log.info("%s:%s is free again: %s's port %s is there", *moved.address, *key)
        return moved

    @staticmethod
    def _open_front(instance_id: str, public: str, port: int) -> Front | None:
        """The front at ``public``:``port``; on a free port of ``public`` when another program holds that one
        (remapped, locally only)."""
        try:
            return Front((public, port))
        except OSError as exc:
            held = exc
        try:
            front = Front((public, 0))
        except OSError as exc:
            log.error("cannot open %s:%s for %s: %s; nor any other port: %s", public, port, instance_id, held, exc)
            return None
        log.warning("%s:%s is held by another program (%s): %s's port %s is at %s:%s", public, port, held,
                    instance_id, port, *front.address)
        return front

    def instance_ids(self) -> list[str]:
        with self.lock:
            return sorted(set(self.ports) | {i for i, _ in self.fronts})

    def forget(self, instance_id: str) -> None:
        """A terminated instance: close its fronts, free its own address."""
        with self.lock:
            for key in [k for k in self.fronts if k[0] == instance_id]:
                self.fronts.pop(key).close()
            self.ports.pop(instance_id, None)
            self.loopback.pop(instance_id, None)
            self.own.pop(instance_id, None)
            for key in [k for k in self.remapped if k[0] == instance_id]:
                del self.remapped[key]

    def close(self) -> None:
        with self.lock:
            for instance_id in list(set(self.own) | set(self.ports) | set(self.loopback)):
                self.forget(instance_id)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {"own_addresses": dict(self.own),
                    "public_ports": {f"{f.address[0]}:{f.address[1]}": {"instance": i, "open": bool(f.target)}
                                     for (i, _), f in self.fronts.items()},
                    # public ip:port -> where your computer reaches it, where another program holds the port
                    "remapped": {f"{f.address[0]}:{port}": f"{f.address[0]}:{f.address[1]}"
                                 for (_, port), f in self.fronts.items() if f.address[1] != port}}


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
        return sock.getsockname()[1]

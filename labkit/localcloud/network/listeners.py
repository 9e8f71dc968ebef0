"""The listeners the network model puts where your computer connects: a forwarder or a black hole.

Your computer (the notebook kernel, a browser, the tests) runs no hook, so what it meets at an address the
cloud shows (an RDS endpoint, an instance's public IP and port) is one of these, switched live by
:mod:`labkit.localcloud.network.service` as the VPC changes:

* :class:`BlackHole`: ``listen(0)`` with its one queue slot held by a connection never accepted, so the kernel
  drops every further SYN and the client's own connect() times out, as when a security group or a missing
  route drops packets on AWS (pymysql 2003 "(timed out)", urllib's timeout, a browser spinning).
* :class:`Forwarder`: carries each connection to the real server (the path from the internet is open), from a
  source address of the lab's block when given one (an instance's own address lets in no other source).
* nothing at all (no :class:`Front`): the port is refused, as a host's kernel refuses a port nothing listens on.
"""
from __future__ import annotations

import ctypes
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

Refused = Callable[[tuple[Any, ...]], None] | None

LINGER_RESET = struct.pack("ii", 1, 0)
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def listener(address: tuple[str, int], backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class BlackHole:
    """A listener whose accept queue is full: SYNs to it go unanswered, so connect() times out."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = listener(address, backlog=0)
        self.address = self.sock.getsockname()
        self.filler = socket.create_connection(self.address, timeout=2)

    def close(self) -> None:
        for sock in (self.filler, self.sock):
            sock.close()


class Forwarder:
    """A listener that carries every connection to ``target`` (from ``source``'s address when given); a refused
    target resets the client, as the server's own refusal would, and is told to ``on_refused``."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int], source: str | None = None,
                 on_refused: Refused = None) -> None:
        self.sock, self.target = listener(address, backlog=128), target
        self.address, self.on_refused = self.sock.getsockname(), on_refused
        self.source = (source, 0) if source else None
        threading.Thread(target=self._accept, daemon=True, name=f"fwd-{address[0]}:{address[1]}").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            server = connect(self.target, self.source)
        except OSError as exc:
            try:  # told first, so that once the client sees its reset the port already answers as it now should
                if isinstance(exc, ConnectionRefusedError) and self.on_refused is not None:
                    self.on_refused(self.address)
            finally:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                client.close()
            return
        server.settimeout(None)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        splice(client, server)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def connect(target: tuple[str, int], source: tuple[str, int] | None) -> socket.socket:
    """A connection to ``target``, from ``source``'s address when given (its port chosen at connect, as for an
    unbound socket)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind(source)
        sock.settimeout(5)
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


_relay: Callable[[int, int], int] | None = None


def use_relay(library: str) -> None:
    """Carry the fronts' bytes with ``labkit_relay`` of the network library (``netlink.c``): in C, without the GIL,
    rather than a Python round (and the GIL taken twice) per chunk. Without it the fronts copy in Python."""
    global _relay
    relay = ctypes.CDLL(library, use_errno=True).labkit_relay  # (CDLL: the GIL is let go during the call)
    relay.argtypes, relay.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _relay = relay


def _copy(src: socket.socket, dst: socket.socket) -> None:
    """One direction, until ``src`` ends (passed on to ``dst``); OSError on an error."""
    relay = _relay
    if relay is None:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
        dst.shutdown(socket.SHUT_WR)
        return
    if relay(src.fileno(), dst.fileno()) != 0:
        code = ctypes.get_errno() or 0
        raise OSError(code, "the front's relay failed")


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both ends are done; a half-close is passed on, an error resets both."""
    left, lock = [2], threading.Lock()
    for sock in (a, b):
        sock.setblocking(True)  # (the relay reads and writes the descriptors as they are)

    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            _copy(src, dst)
        except OSError:
            for sock in (a, b):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                a.close()
                b.close()

    threading.Thread(target=copy, args=(b, a), daemon=True).start()
    copy(a, b)


class Front:
    """What your computer meets at an address the cloud shows: a forwarder to ``target`` or (None) a black hole,
    switched live; a forwarder's connections come from ``source``'s address when given."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int] | None = None,
                 source: str | None = None, on_refused: Refused = None) -> None:
        self.source, self.on_refused = source, on_refused
        self.current: BlackHole | Forwarder | None = self._make(address, target)
        self.address = self.current.address
        self.target = target

    def _make(self, address: tuple[str, int], target: tuple[str, int] | None) -> BlackHole | Forwarder:
        return Forwarder(address, target, self.source, self.on_refused) if target else BlackHole(address)

    def point(self, target: tuple[str, int] | None) -> None:
        """Switch to ``target``; when the new listener cannot bind, the error is raised and the front stays
        unset (nothing answers), so the next call tries again whatever its target."""
        if target == self.target and self.current is not None:
            return
        if self.current is not None:
            self.current.close()
            self.current = None
        self.current = self._make(self.address, target)
        self.target = target

    def close(self) -> None:
        if self.current is not None:
            self.current.close()

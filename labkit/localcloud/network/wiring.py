"""The wiring between the network model and the processes it decides for.

The compiled hook (``netlink.c``, built by ``make setup`` or here with cc), the lab's loopback block, the
owner-only unix socket on which the model answers the hook (:class:`DecisionServer`), and the mapped file in
which it publishes its generation, so each hooked process keeps its answers until the VPC changes. The
design is told in :mod:`labkit.localcloud.network.service`.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import mmap
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from labkit.localcloud.control import PROJECT_ROOT

if TYPE_CHECKING:
    from labkit.localcloud.network.listeners import BlackHole

log = logging.getLogger("labkit.localcloud.network")
SOURCE = Path(__file__).with_name("netlink.c")
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, NLM_F_DUMP, NLMSG_ERROR, NLMSG_DONE = 4, 20, 1, 0x300, 2, 3
TCP_LISTEN = 10
V4_MAPPED = bytes(10) + b"\xff\xff"


def library_path() -> Path:
    return Path(os.environ.get("LABKIT_NETLINK") or PROJECT_ROOT / ".cache" / "net" / "labkit_netlink.so")


def ensure_library() -> Path:
    """The compiled connect() hook; built here with cc when ``make setup`` has not built it yet."""
    target = library_path()
    if target.exists() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler to build the network hook; run `make setup` (installs gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-Wall", "-o", str(tmp), str(SOURCE), "-ldl", "-pthread"],
                   check=True, capture_output=True)
    tmp.chmod(0o755)  # the daemon's umask is 077; on a shared install every student's processes preload it
    tmp.replace(target)
    return target


def listeners_in(block: ipaddress.IPv4Network) -> bool:
    """True when a TCP socket on this machine listens at an address of ``block`` (connections do not count: those a
    stopped or crashed lab left in TIME_WAIT must not move it to another block when it starts again)."""
    for table in ("/proc/net/tcp",):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            if line.split()[3] != "0A":  # TCP_LISTEN
                continue
            hex_ip = line.split()[1].split(":")[0]
            ip = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(hex_ip), "little"))
            if ip in block:
                return True
    return False


def listening_ports(addresses: Iterable[str]) -> dict[str, set[int]]:
    """The TCP ports listened on at each of ``addresses`` now (IPv4 and IPv4-mapped IPv6 sockets), asked of the
    kernel's sock_diag as ``ss -ltn`` does (no privilege needed): only listening sockets come back, so it stays
    cheap on a machine with thousands of connections, where reading /proc/net/tcp costs tens of ms."""
    wanted = {ipaddress.IPv4Address(a).packed: a for a in addresses}
    found: dict[str, set[int]] = {a: set() for a in wanted.values()}
    if not wanted:
        return found
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG) as nl:
        for family in (socket.AF_INET, socket.AF_INET6):
            request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(48)
            nl.send(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                    + request)
            for message in _dump(nl):  # inet_diag_msg: family, state, timer, retrans, then the socket's id
                mapped = message[0] == socket.AF_INET6 and message[8:20] == V4_MAPPED
                ip = message[20:24] if mapped else message[8:12] if message[0] == socket.AF_INET else b""
                if ip in wanted:
                    found[wanted[ip]].add(struct.unpack_from(">H", message, 4)[0])
    return found


def _dump(nl: socket.socket) -> Iterator[bytes]:
    """The payloads of a netlink dump's messages, until its end; a kernel error is raised (OSError with its errno),
    never read as an empty answer ("nothing listens")."""
    while True:
        data, offset = nl.recv(1 << 16), 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind == NLMSG_ERROR and offset + 20 <= len(data):
                code = -struct.unpack_from("=i", data, offset + 16)[0]
                if code:
                    raise OSError(code, f"sock_diag: {os.strerror(code)}")
            if kind in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                return
            yield data[offset + 16:offset + length]
            offset += (length + 3) & ~3


SUN_PATH_MAX = 107  # sockaddr_un's sun_path holds 108 bytes, with its closing NUL


def socket_path(home: Path) -> str:
    """Where the decision server listens: ``<home>/net.sock``, or, when that is too long for AF_UNIX, a socket in a
    fresh private directory (owner-only, mkdtemp) in the temp folder: never a predictable name others could take."""
    path = str(home / "net.sock")
    if len(path.encode()) <= SUN_PATH_MAX:
        return path
    for base in (tempfile.gettempdir(), "/tmp"):
        private = tempfile.mkdtemp(prefix="labkit-net-", dir=base)
        path = os.path.join(private, "net.sock")
        if len(path.encode()) <= SUN_PATH_MAX:
            return path
        os.rmdir(private)
    raise RuntimeError(f"no folder short enough for the network's socket (home {home})")


def allocate_block(home: Path, preferred: str | None = None) -> ipaddress.IPv4Network:
    """A /24 of 127.0.0.0/8 for this lab: the one its saved state names while nothing else listens there (the lab's
    addresses are part of the lab), else derived from its home folder, the first one nothing uses."""
    if preferred:
        block = ipaddress.IPv4Network(preferred)
        if not listeners_in(block):
            return block
        log.warning("the lab's saved address block %s is in use by another program: the lab moves to another", block)
    digest = hashlib.sha256(str(home.resolve()).encode()).digest()
    for attempt in range(64):
        value = int.from_bytes(digest[2 * attempt % 30:2 * attempt % 30 + 2], "big") + attempt
        block = ipaddress.IPv4Network(f"127.{2 + value % 250}.{(value >> 8) % 256}.0/24")
        if not listeners_in(block):
            return block
    raise RuntimeError("no free 127.x.y.0/24 block for the lab's network")


class Decider(Protocol):
    """What the decision server asks the network model (:class:`~labkit.localcloud.network.service.NetworkService`)."""

    @property
    def black_hole(self) -> BlackHole: ...

    def remap(self, who: str, port: int) -> int: ...

    def listened(self, who: str, port: int, loopback: bool = False, bound: int | None = None) -> None: ...

    def decide(self, who: str, ip: str, port: int) -> tuple[str, int]: ...


class DecisionServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, model: Decider) -> None:
        self.model = model
        old = os.umask(0o177)
        try:
            super().__init__(path, _DecisionHandler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)


class _DecisionHandler(socketserver.StreamRequestHandler):
    """One line each way: ``connect <who> <ip> <port>`` -> ``<ip> <port>``; ``listen <who> <port> [loopback]
    [at <bound port>]`` -> ``ok`` (``loopback``: the port is on the instance's 127.0.0.1 / ::1 only; ``at``: the
    socket was remapped there); ``remap <who> <port>`` -> the port to bind instead (0: none)."""

    server: DecisionServer

    def handle(self) -> None:
        line = self.rfile.readline(512).decode(errors="replace").split()
        model = self.server.model
        if len(line) == 3 and line[0] == "remap" and line[2].isdigit():
            try:
                to = model.remap(line[1], int(line[2]))
            except Exception:
                log.exception("remapping %s's port %s failed", line[1], line[2])
                to = 0
            self.wfile.write(f"{to}\n".encode())
            return
        if len(line) >= 3 and line[0] == "listen" and line[2].isdigit():
            flags = line[3:]
            at = flags[flags.index("at") + 1] if "at" in flags[:-1] else ""
            try:
                model.listened(line[1], int(line[2]), loopback="loopback" in flags,
                               bound=int(at) if at.isdigit() else None)
            except Exception:
                log.exception("opening %s's port %s failed", line[1], line[2])
            self.wfile.write(b"ok\n")
            return
        if len(line) != 4 or line[0] != "connect" or not line[3].isdigit():
            return
        _, who, ip, port = line
        try:
            to_ip, to_port = model.decide(who, ip, int(port))
        except Exception:
            log.exception("deciding %s -> %s:%s failed", who, ip, port)
            to_ip, to_port = model.black_hole.address
        self.wfile.write(f"{to_ip} {to_port}\n".encode())


def generation_file(path: Path) -> mmap.mmap:
    """The file through which hooked processes see the model's generation (8 bytes, owner-only, mapped)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, 8)
        return mmap.mmap(fd, 8)
    finally:
        os.close(fd)

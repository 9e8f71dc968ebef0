"""The local cloud's network model: every connection the cloud carries is decided by the lab's VPC.

Design (Linux, no root, no network namespaces, no iptables, so it runs in an unprivileged container):

* **Addresses.** Each lab gets a /24 of loopback addresses (``127.x.y.0/24``, derived from its home
  folder, skipped while anything else listens in it). The cloud shows these addresses and only these:
  each RDS instance's endpoint, and, for the processes it runs, one address per AWS service
  (``AWS_ENDPOINT_URL_<SERVICE>``), as each service has its own host name on AWS.
* **Processes the cloud starts** (Lambda workers, instance processes, user data, SSM commands) carry
  ``LD_PRELOAD`` of a small C ``connect()`` hook (``netlink.c``; entries already in ``LD_PRELOAD``, such
  as libfaketime, are kept) and their identity (``LABKIT_NET_WHO=lambda:<arn>`` / ``instance:<id>``). A
  connect() into the lab's block asks this model, over an owner-only unix socket, where to go: the real
  server (database, API) when the VPC carries the path, else a **black hole**: a listener with
  ``listen(0)`` whose one queue slot is held by a connection never accepted, so the kernel drops every
  further SYN and the client's own connect() times out, exactly as a security group or a missing route
  drops packets on AWS (pymysql 2003 "(timed out)", botocore ConnectTimeoutError, a Lambda's "Task
  timed out"). Works for C clients (the mysql CLI) as for Python, since it is libc's connect().
* **Your computer** (notebook kernel, browser, tests) is unhooked and on the internet: it connects to the
  advertised address itself, where this model keeps either a forwarder (the path from the internet is
  open: publicly accessible DB, IGW route, group open to 0.0.0.0/0) or a black hole listener.
* **Decisions** come from :mod:`labkit.reachability` over describe-shaped records read from the cloud's
  own API, cached per *generation*: any mutating EC2/RDS/Lambda request bumps it, and the advertised
  listeners are re-decided before that request returns, so a change applies to the next connection.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shutil
import socket
import socketserver
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from labkit import reachability as rx
from labkit.localcloud.control import PROJECT_ROOT, admin_credentials
from labkit.localcloud.services import ApiRequest, CloudContext, Launch, Service

log = logging.getLogger("labkit.localcloud.network")
SOURCE = Path(__file__).with_name("netlink.c")
# AWS services the cloud's processes call, each at its own address of the lab's block (offset, env suffix).
SERVICES = {"": (1, ""), "secretsmanager": (2, "SECRETS_MANAGER"), "s3": (3, "S3"), "lambda": (4, "LAMBDA"),
            "sts": (5, "STS"), "ssm": (6, "SSM"), "logs": (7, "CLOUDWATCH_LOGS"), "ec2": (8, "EC2"),
            "rds": (9, "RDS"), "events": (10, "EVENTBRIDGE"), "iam": (11, "IAM"), "sqs": (12, "SQS"),
            "sns": (13, "SNS"), "kms": (14, "KMS"), "dynamodb": (15, "DYNAMODB"), "monitoring": (16, "CLOUDWATCH")}
DB_OFFSETS = range(32, 128)
BLACK_HOLE_OFFSET = 250
READ_ONLY = ("Describe", "List", "Get", "Invoke")


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
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-Wall", "-o", str(tmp), str(SOURCE), "-ldl"],
                   check=True, capture_output=True)
    tmp.replace(target)
    return target


def listeners_in(block: ipaddress.IPv4Network) -> bool:
    """True when any TCP socket on this machine is bound to an address of ``block``."""
    for table in ("/proc/net/tcp",):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            hex_ip = line.split()[1].split(":")[0]
            ip = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(hex_ip), "little"))
            if ip in block:
                return True
    return False


def allocate_block(home: Path) -> ipaddress.IPv4Network:
    """A /24 of 127.0.0.0/8 for this lab: derived from its home folder, the first one nothing uses."""
    digest = hashlib.sha256(str(home.resolve()).encode()).digest()
    for attempt in range(64):
        value = int.from_bytes(digest[2 * attempt % 30:2 * attempt % 30 + 2], "big") + attempt
        block = ipaddress.IPv4Network(f"127.{2 + value % 250}.{(value >> 8) % 256}.0/24")
        if not listeners_in(block):
            return block
    raise RuntimeError("no free 127.x.y.0/24 block for the lab's network")


class BlackHole:
    """A listener whose accept queue is full: SYNs to it go unanswered, so connect() times out."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = _listener(address, backlog=0)
        self.address = self.sock.getsockname()
        self.filler = socket.create_connection(self.address, timeout=2)

    def close(self) -> None:
        for sock in (self.filler, self.sock):
            sock.close()


class Forwarder:
    """A listener that carries every connection to ``target`` (the path from the internet is open)."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int]) -> None:
        self.sock, self.target = _listener(address, backlog=128), target
        threading.Thread(target=self._accept, daemon=True, name=f"fwd-{address[0]}").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        threading.Thread(target=_pump, args=(server, client), daemon=True).start()
        _pump(client, server)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _listener(address: tuple[str, int], backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(backlog)
    return sock


class Front:
    """What your computer meets at an advertised address: a forwarder or a black hole, switched live."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.target: tuple[str, int] | None = None
        self.current: BlackHole | Forwarder = BlackHole(address)

    def point(self, target: tuple[str, int] | None) -> None:
        if target == self.target:
            return
        self.current.close()
        self.target = target
        self.current = Forwarder(self.address, target) if target else BlackHole(self.address)

    def close(self) -> None:
        self.current.close()


class NetworkModel(Service):
    """Identities, addresses, decisions and the listeners that carry or drop connections."""

    name = "network"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.port = urlsplit(ctx.endpoint).port
        self.library = str(ensure_library())
        self.block = allocate_block(ctx.home)
        self.generation = 0
        self.lock = threading.RLock()
        self._cache: dict[Any, Any] = {}
        self._cache_generation = -1
        self.dbs: dict[str, str] = {}  # DB identifier -> its address
        self.fronts: dict[str, Front] = {}  # DB identifier -> its advertised listener
        self.black_hole = BlackHole((self.address(BLACK_HOLE_OFFSET), 0))
        self.sock_path = self._socket_path()
        self._server = _DecisionServer(self.sock_path, self)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="net-decisions").start()
        self._clients: dict[str, Any] = {}

    def _socket_path(self) -> str:
        path = str(self.ctx.home / "net.sock")
        if len(path) > 100:
            path = f"/tmp/labkit-net-{hashlib.sha256(path.encode()).hexdigest()[:16]}.sock"
        if os.path.exists(path):
            os.unlink(path)
        return path

    def address(self, offset: int) -> str:
        return str(self.block.network_address + offset)

    def summary(self) -> dict:
        return {"block": str(self.block), "generation": self.generation, "library": self.library,
                "databases": {k: f"{v}:{self.fronts[k].address[1]}" for k, v in self.dbs.items() if k in self.fronts},
                "internet_open": sorted(k for k, f in self.fronts.items() if f.target)}

    # -- processes ----------------------------------------------------------------------------------------
    def on_launch(self, launch: Launch) -> None:
        """Lambda workers and everything run in an instance sit in the VPC: preload the hook, name them."""
        who = {"lambda": "lambda", "ec2": "instance"}.get(launch.kind)
        if who is None:
            return
        extra = {"LABKIT_NET_BLOCK": str(self.block), "LABKIT_NET_SOCK": self.sock_path,
                 "LABKIT_NET_WHO": f"{who}:{launch.resource}"}
        for offset, suffix in SERVICES.values():
            key = f"AWS_ENDPOINT_URL_{suffix}" if suffix else "AWS_ENDPOINT_URL"
            if key == "AWS_ENDPOINT_URL" or key not in launch.env:  # a function's own setting stays
                extra[key] = f"http://{self.address(offset)}:{self.port}"
        launch.env.update(extra)
        launch.preload(self.library)

    # -- state changes ------------------------------------------------------------------------------------
    def on_request(self, call: ApiRequest) -> None:
        """Note API requests that may change the network (EC2/RDS writes, Lambda configuration)."""
        operation = call.operation or ""
        if call.service in ("ec2", "rds", "lambda") and not operation.startswith(READ_ONLY):
            call.annotations["network_change"] = True
            self.changed(refresh=False)  # nothing decided while moto changes it is kept
        return None

    def after_request(self, call: ApiRequest) -> None:
        if call.annotations.get("network_change"):
            self.changed()

    def changed(self, refresh: bool = True) -> None:
        """Something that decides paths changed: forget decisions, re-decide what your computer meets."""
        with self.lock:
            self.generation += 1
        if refresh:
            self.refresh_fronts()

    # -- databases ----------------------------------------------------------------------------------------
    def add_db(self, identifier: str) -> tuple[str, int]:
        """Give a new DB instance its endpoint (address, port): 3306 on its own address when free."""
        with self.lock:
            used = set(self.dbs.values())
            ip = next(self.address(o) for o in DB_OFFSETS if self.address(o) not in used)
            try:
                front = Front((ip, 3306))
            except OSError:
                front = Front((ip, 0))
                front.address = front.current.address
            self.dbs[identifier], self.fronts[identifier] = ip, front
            return front.address

    def remove_db(self, identifier: str) -> None:
        with self.lock:
            self.dbs.pop(identifier, None)
            front = self.fronts.pop(identifier, None)
        if front:
            front.close()

    def db_address(self, identifier: str) -> str:
        return self.dbs.get(identifier, "127.0.0.1")

    def refresh_fronts(self) -> None:
        for identifier, front in list(self.fronts.items()):
            try:
                db = self._db_node(identifier)
                verdict = rx.connect(self._network(), rx.YOUR_COMPUTER, db[0], front.address[1]) if db else None
                front.point(db[1] if db and verdict.allowed else None)
            except Exception:  # a half-created record: keep it closed
                log.exception("deciding the path to %s failed", identifier)
                front.point(None)

    # -- decisions ----------------------------------------------------------------------------------------
    def decide(self, who: str, ip: str, port: int) -> tuple[str, int]:
        """Where a connection from ``who`` to ``ip``:``port`` really goes (a black hole when dropped)."""
        key = ("decide", who, ip, port)
        cached = self._cached(key)
        if cached is not None:
            return cached
        verdict, target = self._verdict(who, ip, port)
        answer = target if verdict.allowed and target else self.black_hole.address
        if not verdict.allowed:
            log.info("dropped %s -> %s:%s: %s", who, ip, port, verdict.reason)
        self._store(key, answer)
        return answer

    def _verdict(self, who: str, ip: str, port: int) -> tuple[rx.Verdict, tuple[str, int] | None]:
        source = self._source(who)
        if source is None:
            return rx.Verdict(False, f"unknown caller {who}"), None
        offset = int(ipaddress.IPv4Address(ip)) - int(self.block.network_address)
        service = next((s for s, (o, _) in SERVICES.items() if o == offset), None)
        if service is not None:
            return rx.api_path(self._network(), source, service, self._region()), ("127.0.0.1", self.port)
        identifier = next((k for k, v in self.dbs.items() if v == ip), None)
        if identifier is not None and port == self.fronts[identifier].address[1]:
            db = self._db_node(identifier)
            if db:
                return rx.connect(self._network(), source, db[0], port), db[1]
        return rx.Verdict(False, f"nothing listens at {ip}:{port}"), None

    def _cached(self, key: Any) -> Any:
        with self.lock:
            if self._cache_generation != self.generation:
                self._cache, self._cache_generation = {}, self.generation
            return self._cache.get(key)

    def _store(self, key: Any, value: Any) -> None:
        with self.lock:
            if self._cache_generation == self.generation:
                self._cache[key] = value

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, endpoint_url=self.ctx.endpoint, region_name=self._region(),
                **admin_credentials(self.ctx.home),
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))
        return self._clients[service]

    def _region(self) -> str:
        return os.environ.get("AWS_REGION") or "us-east-1"

    def _network(self) -> rx.Network:
        cached = self._cached("network")
        if cached is None:
            cached = rx.Network.describe(self._client("ec2"))
            self._complete_default_vpcs(cached)
            self._store("network", cached)
        return cached

    def _complete_default_vpcs(self, net: rx.Network) -> None:
        """AWS's default VPC comes with an attached internet gateway and a 0.0.0.0/0 route in its main table;
        moto 5.2.5 creates neither, so the model adds them to what it decides on."""
        for vpc in self._client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
            vpc_id = vpc["VpcId"]
            if any(a.get("VpcId") == vpc_id for g in net.internet_gateways for a in g.get("Attachments", [])):
                continue
            igw = f"igw-default-{vpc_id}"
            net.internet_gateways.append({"InternetGatewayId": igw, "Attachments": [{"VpcId": vpc_id,
                                                                                       "State": "available"}]})
            for table in net.route_tables:
                if table.get("VpcId") == vpc_id and any(a.get("Main") for a in table.get("Associations", [])) \
                        and not any(r.get("DestinationCidrBlock") == rx.INTERNET for r in table.get("Routes", [])):
                    table.setdefault("Routes", []).append({"DestinationCidrBlock": rx.INTERNET, "GatewayId": igw,
                                                          "State": "active"})

    def _source(self, who: str) -> rx.Node | None:
        kind, _, ident = who.partition(":")
        key = ("source", who)
        cached = self._cached(key)
        if cached is not None:
            return cached
        node = None
        if kind == "lambda":
            config = self._client("lambda").get_function_configuration(FunctionName=ident)
            node = rx.function_node(self._network(), config)
        elif kind == "instance":
            found = self._client("ec2").describe_instances(InstanceIds=[ident])["Reservations"]
            node = rx.instance_node(found[0]["Instances"][0])
        self._store(key, node)
        return node

    def _db_node(self, identifier: str) -> tuple[rx.Node, tuple[str, int]] | None:
        key = ("db", identifier)
        cached = self._cached(key)
        if cached is not None:
            return cached
        rds = self.ctx.services.get("rds")
        server = rds.servers.get(identifier) if rds is not None else None
        try:
            db = self._client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except Exception:
            return None
        node = rx.db_node(self._network(), db)
        result = (node, ("127.0.0.1", server.port)) if server else None
        self._store(key, result)
        return result

    def close(self) -> None:
        """Stop deciding and release every listener (the daemon's exit does this too)."""
        self._server.shutdown()
        self._server.server_close()
        for identifier in list(self.fronts):
            self.remove_db(identifier)
        self.black_hole.close()
        try:
            os.unlink(self.sock_path)
        except OSError:
            pass

    def after_reset(self) -> None:
        self._clients.clear()  # the admin user is made anew
        for identifier in list(self.fronts):
            self.remove_db(identifier)
        self.changed()


class _DecisionServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, model: NetworkModel) -> None:
        self.model = model
        old = os.umask(0o177)
        try:
            super().__init__(path, _DecisionHandler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)


class _DecisionHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(512).decode(errors="replace").split()
        if len(line) != 3:
            return
        who, ip, port = line
        try:
            to_ip, to_port = self.server.model.decide(who, ip, int(port))
        except Exception:
            log.exception("deciding %s -> %s:%s failed", who, ip, port)
            to_ip, to_port = self.server.model.black_hole.address
        self.wfile.write(f"{to_ip} {to_port}\n".encode())

"""The local cloud's network model: every connection the cloud carries is decided by the lab's VPC.

Design (Linux, no root, no network namespaces, no iptables, so it runs in an unprivileged container):

* **Addresses.** Each lab gets a /24 of loopback addresses (``127.x.y.0/24``, derived from its home
  folder, skipped while anything else listens in it). The cloud shows these addresses and only these:
  each RDS instance's endpoint, each public IP (instances, Elastic IPs), and, for the processes it runs,
  one address per AWS service (``AWS_ENDPOINT_URL_<SERVICE>``), as each service has its own host name on
  AWS. Each instance also has an address of its own, where its wildcard binds land
  (:mod:`.instances`).
* **Processes the cloud starts** (Lambda workers, instance processes, user data, SSM commands) carry
  ``LD_PRELOAD`` of a small C ``connect()`` hook (``netlink.c``; entries already in ``LD_PRELOAD``, such
  as libfaketime, are kept) and their identity (``LABKIT_NET_WHO=lambda:<arn>`` / ``instance:<id>``). A
  connect() into the lab's block asks this model, over an owner-only unix socket, where to go: the real
  server (database, API) when the VPC carries the path, else a **black hole**: a listener with
  ``listen(0)`` whose one queue slot is held by a connection never accepted, so the kernel drops every
  further SYN and the client's own connect() times out, exactly as a security group or a missing route
  drops packets on AWS (pymysql 2003 "(timed out)", botocore ConnectTimeoutError, a Lambda's "Task
  timed out"). Works for C clients (the mysql CLI) as for Python, since it is libc's connect().
* **Your computer** (notebook kernel, browser, tests) is unhooked and on the internet, at the address the
  cloud sees its connections come from: ``127.0.0.1`` for every process on this machine the cloud did not
  start. ``GET /_labkit/checkip`` answers it, as https://checkip.amazonaws.com answers your public address
  on AWS (labkit asks there; a rule for "My IP" is that address /32). It connects to the advertised address
  itself (a DB endpoint, an instance's public IP and app port), where this model keeps either a forwarder
  (the path from your computer is open: public address, IGW route, a rule holding your address) or a black
  hole listener (:mod:`.listeners`).
* **Decisions** come from :mod:`labkit.reachability` over describe-shaped records read from the cloud's
  own API, cached per *generation*: any mutating EC2/RDS/Lambda request bumps it, and the advertised
  listeners are re-decided before that request returns, so a change applies to the next connection. The
  generation is published in a mapped file (``net.gen``), so each hooked process keeps its answers while
  it holds and asks again after any change: a repeated connection costs no round trip to the model.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import struct
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from werkzeug.wrappers import Request, Response

from labkit import reachability as rx
from labkit.localcloud.control import admin_credentials
from labkit.localcloud.core.http_keepalive import close_idle_connections
from labkit.localcloud.core.models import botocore_session
from labkit.localcloud.core.services import INTERNAL_AGENT, ApiRequest, CloudContext, Launch, Route, Service
from labkit.localcloud.network import listeners
from labkit.localcloud.network.instances import NO_HOST, Instances, moto_public_addresses, named_ports
from labkit.localcloud.network.listeners import BlackHole, Front
from labkit.localcloud.network.wiring import (
    DecisionServer,
    allocate_block,
    ensure_library,
    generation_file,
    socket_path,
)

log = logging.getLogger("labkit.localcloud.network")
# AWS services the cloud's processes call, each at its own address of the lab's block (offset, env suffix).
SERVICES = {"": (1, ""), "secretsmanager": (2, "SECRETS_MANAGER"), "s3": (3, "S3"), "lambda": (4, "LAMBDA"),
            "sts": (5, "STS"), "ssm": (6, "SSM"), "logs": (7, "CLOUDWATCH_LOGS"), "ec2": (8, "EC2"),
            "rds": (9, "RDS"), "events": (10, "EVENTBRIDGE"), "iam": (11, "IAM"), "sqs": (12, "SQS"),
            "sns": (13, "SNS"), "kms": (14, "KMS"), "dynamodb": (15, "DYNAMODB"), "monitoring": (16, "CLOUDWATCH")}
DB_OFFSETS = range(32, 128)
BLACK_HOLE_OFFSET = 250
CLOSED_OFFSET = 251  # nothing ever listens here: a connection sent to it is refused, as by a closed port
WORKERS_OFFSET = 252  # the source of the Lambda workers' connections into the block (instances use their own)
READ_ONLY = ("Describe", "List", "Get", "Invoke")
YOUR_ADDRESS = "127.0.0.1"  # where the connections of processes the cloud did not start come from
CHECKIP_PATH = "/_labkit/checkip"


class NetworkService(Service):
    """Identities, addresses, decisions and the listeners that carry or drop connections."""

    name = "network"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        port = urlsplit(ctx.endpoint).port
        assert port is not None  # the daemon's endpoint is http://127.0.0.1:PORT
        self.port = port
        self.library = str(ensure_library())
        listeners.use_relay(self.library)
        saved = ctx.state.saved(self.name) or {}
        moved_in = ctx.state.relocation is not None and ctx.state.relocation.get("home") != str(ctx.home)
        self.block = allocate_block(ctx.home, None if moved_in else saved.get("block"))
        if saved.get("block") and saved["block"] != str(self.block):
            self._move_addresses(ipaddress.IPv4Network(saved["block"]))
        self.generation = 0
        self.lock = threading.RLock()
        # Fronts are pointed one refresh at a time, each from a description read inside it: a refresh that read
        # the VPC before a change can never point a front after the refresh that change started.
        self._refreshing = threading.RLock()
        self._cache: dict[Any, Any] = {}
        self._cache_generation = -1
        self.dbs: dict[str, str] = {}  # DB identifier -> its address
        self.db_servers: dict[str, int] = {}  # DB identifier -> the port its real server listens on (127.0.0.1)
        self.fronts: dict[str, Front] = {}  # DB identifier -> its advertised listener
        self.instances = Instances(self.address, self.address(CLOSED_OFFSET), on_gone=self._refresh_instance)
        self._restored = False
        self.black_hole = BlackHole((self.address(BLACK_HOLE_OFFSET), 0))
        self.gen_path = ctx.home / "net.gen"
        self._generation_map = generation_file(self.gen_path)
        self.sock_path = self._socket_path()
        self._server = DecisionServer(self.sock_path, self)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="net-decisions").start()
        self._clients: dict[str, Any] = {}
        self.you = rx.your_computer(YOUR_ADDRESS)

    # -- what a restart keeps (issue 23) --------------------------------------------------------------------
    def _move_addresses(self, old: ipaddress.IPv4Network) -> None:
        """The saved lab lived in another block (a checkpoint of another lab, or its block taken meanwhile): every
        address of it, wherever moto's records and the saved states hold it (public IPs, Elastic IPs, a secret's
        ``host``, a function's variables, a rule's ``/32``, moto's ``ec2-127-x-y-z`` names), moves to the same
        place in this lab's block. IDs and ARNs stay."""
        old_prefix, new_prefix = (str(b.network_address).rsplit(".", 1)[0] for b in (old, self.block))
        moved = self.ctx.state.rewrite(old_prefix + ".", new_prefix + ".")
        moved += self.ctx.state.rewrite(old_prefix.replace(".", "-") + "-", new_prefix.replace(".", "-") + "-")
        log.info("the lab's addresses moved from %s to %s (%d strings rewritten)", old, self.block, moved)

    def save_state(self) -> dict[str, Any]:
        """The lab's addresses: its block, each DB's address and port, each instance's own address, the cursor."""
        with self.lock:
            dbs = {k: [ip, self.fronts[k].address[1]] for k, ip in self.dbs.items() if k in self.fronts}
        return {"block": str(self.block), "databases": dbs, **self.instances.saved()}

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """Addresses as they were: each DB endpoint (its front made again at its address and port), each
        instance's own address; the paths are decided again once the API answers (:meth:`start`)."""
        if not saved or not restored:
            return
        with self.lock:
            for identifier, (ip, port) in saved.get("databases", {}).items():
                try:
                    front = Front((ip, port))
                except OSError:
                    front = Front((ip, 0))
                self.dbs[identifier], self.fronts[identifier] = ip, front
        self.instances.restore(saved)
        self._restored = True

    def start(self) -> None:
        if self._restored:
            threading.Thread(target=self._decide_when_serving, daemon=True, name="net-restore").start()

    def _decide_when_serving(self) -> None:
        """A restored lab: every path (public IPs, DB endpoints) decided as soon as the API answers."""
        with self.ctx.state.settling("network"):
            for _ in range(600):
                try:
                    self._client("ec2").describe_vpcs(MaxResults=5)
                    break
                except Exception:  # not serving yet
                    threading.Event().wait(0.05)
            self.changed()

    def attach_db(self, identifier: str, server_port: int) -> None:
        """A restored DB instance's server listens on ``server_port`` now (its endpoint is the saved one)."""
        with self.lock:
            self.db_servers[identifier] = server_port
        self.changed(refresh=False)

    def routes(self) -> list[tuple[str, str, Route]]:
        """``GET /_labkit/checkip`` (open) and ``GET /_labkit/network/remapped``: public ``ip:port`` -> where your
        computer reaches it, for each port another program on this computer holds (labkit shows those URLs)."""
        return [("GET", CHECKIP_PATH, self._checkip),
                ("GET", "/_labkit/network/remapped", lambda _r: self.instances.summary()["remapped"])]

    @staticmethod
    def _checkip(request: Request) -> Response:
        """The caller's address as the cloud sees it, one line of text, as https://checkip.amazonaws.com."""
        return Response(f"{request.remote_addr}\n", mimetype="text/plain")

    def _socket_path(self) -> str:
        path = socket_path(self.ctx.home)
        if os.path.exists(path):
            os.unlink(path)
        return path

    def address(self, offset: int) -> str:
        return str(self.block.network_address + offset)

    def summary(self) -> dict[str, Any]:
        return {"block": str(self.block), "generation": self.generation, "library": self.library,
                "databases": {k: f"{v}:{self.fronts[k].address[1]}" for k, v in self.dbs.items() if k in self.fronts},
                "internet_open": sorted(k for k, f in self.fronts.items() if f.target), **self.instances.summary()}

    # -- processes ----------------------------------------------------------------------------------------
    def on_launch(self, launch: Launch) -> None:
        """Lambda workers and everything run in an instance sit in the VPC: preload the hook, name them."""
        who = {"lambda": "lambda", "ec2": "instance"}.get(launch.kind)
        if who is None:
            return
        extra = {"LABKIT_NET_BLOCK": str(self.block), "LABKIT_NET_SOCK": self.sock_path,
                 "LABKIT_NET_WHO": f"{who}:{launch.resource}", "LABKIT_NET_GEN": str(self.gen_path)}
        if who == "instance":  # its wildcard binds land on its own address; its 127.0.0.1 reaches them
            extra["LABKIT_NET_BIND"] = self.instances.own_address(launch.resource)
            self.ctx.state.changed(self.name)
        # the source of its connections into the block, which an instance's own address lets in (netlink.c)
        extra["LABKIT_NET_SRC"] = extra.get("LABKIT_NET_BIND") or self.address(WORKERS_OFFSET)
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
            self.ctx.state.changed(self.name)  # the ports the groups name now

    def changed(self, refresh: bool = True) -> None:
        """Something that decides paths changed: forget decisions (here and, through the published generation,
        in every hooked process), re-decide what your computer meets."""
        with self.lock:
            self.generation += 1
            struct.pack_into("<Q", self._generation_map, 0, self.generation)
        close_idle_connections()  # a kept connection to the API would skip the new decision
        if refresh:
            self.refresh_fronts()

    # -- instances ----------------------------------------------------------------------------------------
    def new_public_address(self) -> str:
        """A public IP for moto to hand out (an instance's, an Elastic IP): an address of the lab's block."""
        self.ctx.state.changed(self.name)
        return self.instances.new_public_address(moto_public_addresses())

    def listened(self, who: str, port: int, loopback: bool = False, bound: int | None = None) -> None:
        """A process of an instance listens on ``port`` of the instance's own address (really on ``bound`` when
        remapped): open it (or keep it closed) at the instance's public IP; a port on the instance's loopback
        only is reached by the instance itself and nothing else."""
        kind, _, instance_id = who.partition(":")
        if kind != "instance":
            return
        if self.instances.listened(instance_id, port, loopback, bound):
            self.changed(refresh=False)  # the instance's 127.0.0.1:port now leads to it
        self._refresh_instance(instance_id)

    def remap(self, who: str, port: int) -> int:
        """The port an instance's process binds instead of ``port`` when a program outside the lab holds it on
        the machine's wildcard address (0: the instance holds it itself)."""
        kind, _, instance_id = who.partition(":")
        return self.instances.remap(instance_id, port) if kind == "instance" else 0

    def forget_instance(self, instance_id: str) -> None:
        """TerminateInstances: the instance's fronts close and its own address is free again."""
        self.instances.forget(instance_id)
        self.ctx.state.changed(self.name)
        self.changed(refresh=False)

    def _refresh_instance(self, instance_id: str) -> None:
        with self._refreshing:
            try:
                instance = self._instance(instance_id)
                if instance is not None:
                    net = self._network()
                    self.instances.refresh(instance, self._from_you(net), named_ports(net, self._groups(instance)))
            except Exception:  # a half-created record: left as it was until the next change
                log.exception("deciding the paths to %s failed", instance_id)

    def _refresh_instances(self) -> None:
        """What your computer meets at every public address: each instance's ports, every idle address's."""
        with self._refreshing:
            try:
                net = self._network()
                self.instances.refresh_all(self._instances(), moto_public_addresses(), self._from_you(net),
                                           lambda instance: named_ports(net, self._groups(instance)))
            except Exception:
                log.exception("deciding the paths to the instances failed")

    def _from_you(self, net: rx.Network) -> Callable[[rx.Node, int], rx.Verdict]:
        return lambda node, port: rx.connect(net, self.you, node, port)

    @staticmethod
    def _groups(instance: dict[str, Any]) -> tuple[str, ...]:
        return rx.instance_node(instance).group_ids

    def _instance(self, instance_id: str) -> dict[str, Any] | None:
        return next((i for i in self._instances() if i["InstanceId"] == instance_id), None)

    def _instances(self) -> list[dict[str, Any]]:
        """Every instance the cloud holds, as DescribeInstances shows it (terminated ones left out)."""
        cached: list[dict[str, Any]] | None
        cached, generation = self._cached("instances")
        if cached is None:
            pages = self._client("ec2").get_paginator("describe_instances").paginate()
            cached = [i for page in pages for r in page["Reservations"] for i in r["Instances"]
                      if i["State"]["Name"] not in ("terminated", "shutting-down")]
            self._store("instances", cached, generation)
        return cached

    # -- databases ----------------------------------------------------------------------------------------
    def add_db(self, identifier: str, server_port: int) -> tuple[str, int]:
        """Give a new DB instance its endpoint (address, port): 3306 on its own address when free. Its real server
        listens on ``server_port`` of 127.0.0.1: where a connection the VPC carries goes."""
        with self.lock:
            self.db_servers[identifier] = server_port
            if identifier in self.dbs and identifier in self.fronts:  # restored: its endpoint is the saved one
                saved: tuple[str, int] = self.fronts[identifier].address
                return saved
            used = set(self.dbs.values())
            ip = next(self.address(o) for o in DB_OFFSETS if self.address(o) not in used)
            try:
                front = Front((ip, 3306))
            except OSError:
                front = Front((ip, 0))
            self.dbs[identifier], self.fronts[identifier] = ip, front
            self.ctx.state.changed(self.name)
            address: tuple[str, int] = front.address
            return address

    def remove_db(self, identifier: str) -> None:
        with self.lock:
            self.dbs.pop(identifier, None)
            self.db_servers.pop(identifier, None)
            front = self.fronts.pop(identifier, None)
        self.ctx.state.changed(self.name)
        if front:
            front.close()

    def db_address(self, identifier: str) -> str:
        return self.dbs.get(identifier, "127.0.0.1")

    def refresh_fronts(self) -> None:
        with self._refreshing:
            self._refresh_instances()
            for identifier, front in list(self.fronts.items()):
                try:
                    db = self._db_node(identifier)
                    allowed = db is not None and rx.connect(self._network(), self.you, db[0], front.address[1]).allowed
                    front.point(db[1] if db is not None and allowed else None)
                except Exception:  # a half-created record: keep it closed
                    log.exception("deciding the path to %s failed", identifier)
                    front.point(None)

    # -- decisions ----------------------------------------------------------------------------------------
    def decide(self, who: str, ip: str, port: int) -> tuple[str, int]:
        """Where a connection from ``who`` to ``ip``:``port`` really goes (a black hole when dropped)."""
        key = ("decide", who, ip, port)
        cached: tuple[str, int] | None
        cached, generation = self._cached(key)
        if cached is not None:
            return cached
        verdict, target = self._verdict(who, ip, port)
        answer = target if verdict.allowed and target else self.black_hole.address
        if not verdict.allowed:
            log.info("dropped %s -> %s:%s: %s", who, ip, port, verdict.reason)
        self._store(key, answer, generation)
        return answer

    def _verdict(self, who: str, ip: str, port: int) -> tuple[rx.Verdict, tuple[str, int] | None]:
        kind, _, ident = who.partition(":")
        if ipaddress.IPv4Address(ip) not in self.block:  # an instance's own 127.0.0.1 (or 0.0.0.0)
            target = self.instances.local_target(ident, ip, port)
            if kind == "instance" and target == (ip, port) and port != self.port:  # only the cloud's endpoint
                # (AWS's APIs, IMDS) stands on an instance's loopback; a Lambda sandbox's has its runtime API
                target = (self.address(CLOSED_OFFSET), port)  # else refused, as by the instance's own kernel
            return rx.Verdict(True, "the instance's own loopback"), target
        owner = self.instances.owner_of(ip)
        if owner is not None:  # an instance's own address: its own processes only
            return rx.Verdict(owner == ident, f"{ip} is {owner}'s own address"), self.instances.target(owner, port)
        source = self._source(who)
        if source is None:
            return rx.Verdict(False, f"unknown caller {who}"), None
        instance = next((i for i in self._instances() if i.get("PublicIpAddress") == ip), None)
        if instance is not None:
            own = self.instances.own.get(instance["InstanceId"])
            verdict = rx.connect_public(self._network(), source, rx.instance_node(instance), port)
            if instance["State"]["Name"] in NO_HOST:  # an Elastic IP of a stopped instance: nothing answers
                verdict = rx.Verdict(False, f"{instance['InstanceId']} is {instance['State']['Name']}")
            if self.instances.loopback_only(instance["InstanceId"], port):  # its loopback does not exist outside
                return verdict, (self.address(CLOSED_OFFSET), 1)
            return verdict, self.instances.target(instance["InstanceId"], port) if own else None
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

    def _cached(self, key: Any) -> tuple[Any, int]:
        """The kept answer for ``key`` (None if none) and the generation it is read at."""
        with self.lock:
            if self._cache_generation != self.generation:
                self._cache, self._cache_generation = {}, self.generation
            return self._cache.get(key), self.generation

    def _store(self, key: Any, value: Any, generation: int) -> None:
        """Keep an answer worked out from what was read at ``generation``, unless the VPC changed since: a
        description read before a change must not be kept as the answer after it."""
        with self.lock:
            if self._cache_generation == self.generation == generation:
                self._cache[key] = value

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = botocore_session().create_client(
                service, endpoint_url=self.ctx.endpoint, region_name=self._region(),
                **admin_credentials(self.ctx.home),
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30,
                              user_agent_extra=INTERNAL_AGENT))
        return self._clients[service]

    def _region(self) -> str:
        return os.environ.get("AWS_REGION") or "us-east-1"

    def _network(self) -> rx.Network:
        cached: rx.Network | None
        cached, generation = self._cached("network")
        if cached is None:
            cached = rx.Network.describe(self._client("ec2"))
            self._complete_default_vpcs(cached)
            self._store("network", cached, generation)
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
        cached: rx.Node | None
        cached, generation = self._cached(key)
        if cached is not None:
            return cached
        node = None
        if kind == "lambda":
            config = self._client("lambda").get_function_configuration(FunctionName=ident)
            node = rx.function_node(self._network(), config)
        elif kind == "instance":
            found = self._client("ec2").describe_instances(InstanceIds=[ident])["Reservations"]
            node = rx.instance_node(found[0]["Instances"][0])
        self._store(key, node, generation)
        return node

    def _db_node(self, identifier: str) -> tuple[rx.Node, tuple[str, int]] | None:
        key = ("db", identifier)
        cached: tuple[rx.Node, tuple[str, int]] | None
        cached, generation = self._cached(key)
        if cached is not None:
            return cached
        server_port = self.db_servers.get(identifier)
        try:
            db = self._client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
        except Exception:
            return None
        node = rx.db_node(self._network(), db)
        result = (node, ("127.0.0.1", server_port)) if server_port else None
        self._store(key, result, generation)
        return result

    def close(self) -> None:
        """Stop deciding and release every listener (the daemon's exit does this too)."""
        self._server.shutdown()
        self._server.server_close()
        for identifier in list(self.fronts):
            self.remove_db(identifier)
        self.instances.close()
        self.black_hole.close()
        try:
            os.unlink(self.sock_path)
            if os.path.dirname(self.sock_path) != str(self.ctx.home):
                os.rmdir(os.path.dirname(self.sock_path))  # the private directory of a long home's socket
        except OSError:
            pass

    def after_reset(self) -> None:
        self._clients.clear()  # the admin user is made anew
        for identifier in list(self.fronts):
            self.remove_db(identifier)
        self.instances.close()
        self.changed()

"""LabConfig and the two targets. This module and ``localcloud/`` are the only code that knows the target.

``local`` starts (or reuses) the embedded local cloud and points boto3 at it; ``aws`` uses the standard
credential and region chains, and refuses every call that creates, changes or deletes something until the
lab is confirmed (``confirm=True``: the notebooks' ``confirm`` parameter, ``--yes`` on the command line).
What both offer is the :class:`Target` protocol; code elsewhere asks a target what it needs (``bills``,
``cell_timeout``, ``unreachable_fix``, ...) instead of testing its name.
What is a read is decided per call: an operation named as one (Describe*, Get*, List*, ...), or one of the few
calls that labkit makes only to look and marks so with :func:`as_read` (an SSM command that reads, an Invoke of
a lookup).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import socket
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from labkit import lambda_platform, myip
from labkit.errors import CloudError, ConfigError
from labkit.localcloud import control

TARGETS = ("local", "aws")
DEFAULT_TARGET = "local"
POLICY_MODES = ("managed", "least-privilege")
NAME = re.compile(r"^[a-z][a-z0-9-]{2,30}$")

RUN_DIR = "LABKIT_RUN_DIR"  # set by `labkit run` for its kernels: the folder of the executed notebooks


@dataclass(frozen=True)
class LabConfig:
    """What a lab is: where it runs, its name (the ``lab`` tag on everything) and its choices."""

    target: str = DEFAULT_TARGET
    name: str = "orders-lab"
    region: str = "us-east-1"
    policies: str | None = None  # None: the mode stored with the lab (iam.policy_mode), else "managed"
    confirm: bool = False
    app_port: int = 5000
    # Who may reach the app port: "my-ip" (your address /32, as the console's "My IP": myip.your_address) by
    # default, since the order API has no login and writes to the database; "0.0.0.0/0" opens it to the internet.
    app_cidr: str = "my-ip"
    ssh_cidr: str | None = None
    cloud_port: int | None = None
    home: Path = field(default_factory=control.default_home)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}", f"use one of {', '.join(TARGETS)}")
        if not NAME.match(self.name):
            raise ConfigError(f"lab name {self.name!r} is not valid",
                              "use 3-31 lower-case letters, digits and dashes, starting with a letter")
        if self.policies is not None and self.policies not in POLICY_MODES:
            raise ConfigError(f"unknown policies mode {self.policies!r}", f"use one of {', '.join(POLICY_MODES)}")
        for option in ("app_cidr", "ssh_cidr"):
            problem = myip.check_cidr_option(option, getattr(self, option))
            if problem:
                raise ConfigError(problem, f'give a CIDR such as "203.0.113.7/32" or "0.0.0.0/0", or "{myip.MY_IP}" '
                                           "for your own address")

    @property
    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "lab", "Value": self.name}]


class Target(Protocol):
    """What a lab's target offers, whether it is the local cloud or a real AWS account."""

    name: ClassVar[str]
    poll_seconds: ClassVar[float]  # how often to ask while waiting for a change
    cell_timeout: ClassVar[int]  # seconds a notebook cell may take (`labkit run`)
    bills: ClassVar[bool]  # whether what the lab creates costs money (then it needs confirming, and leftovers matter)
    unreachable_fix: ClassVar[str]  # what to do when its API does not answer
    instance_runs_as: ClassVar[str]  # what an EC2 instance is on it (on the local cloud: a sandbox on this computer)
    instance_kernel_note: ClassVar[str]  # said beside the kernel `uname` shows on the instance
    confirmed: bool

    @property
    def endpoint_url(self) -> str | None: ...
    def session_kwargs(self) -> dict[str, Any]: ...
    def guard(self, session: Any) -> None: ...
    def require_confirmation(self, action: str, confirm: bool = False) -> None: ...
    def describe(self) -> dict[str, str]: ...
    def aws_name(self, kind: str, name: str = "") -> str: ...
    def as_on_aws(self, kind: str, address: str, name: str = "") -> str: ...
    def db_ca_bundle(self, region: str | None = None) -> bytes: ...
    def lambda_runtime(self) -> str: ...
    def fire_schedule(self, rule_arn: str, hours: float, invoke: Any) -> list[dict[str, Any]]: ...
    def lab_time(self) -> str: ...
    def realistic(self, on: bool = True) -> dict[str, Any]: ...
    def timing(self) -> dict[str, Any]: ...
    def checkip_url(self) -> str: ...
    def public_port(self, address: str, port: int) -> tuple[int, str]: ...
    def browser_url(self, url: str) -> str: ...


class LocalTarget:
    """The embedded local cloud: started on demand, reached through its endpoint."""

    name: ClassVar[str] = "local"
    poll_seconds: ClassVar[float] = 0.5
    cell_timeout: ClassVar[int] = 900
    bills: ClassVar[bool] = False
    unreachable_fix: ClassVar[str] = "start the local cloud: `labkit cloud start`"
    confirmed = True  # nothing to confirm: nothing costs money
    # What an EC2 instance is on this target, said wherever labkit shows the instance (its table, step 5, status).
    instance_runs_as: ClassVar[str] = (
        "a sandbox on this computer, not a virtual machine: the local cloud runs the instance's programs as processes "
        "of your machine, in a folder of their own, under this computer's Linux kernel (uname shows it); the image id "
        "stays Canonical's Ubuntu 22.04 AMI, as AWS boots")
    instance_kernel_note: ClassVar[str] = (" (this computer's kernel: on the local cloud the instance is a sandbox on "
                                           "your machine; on AWS uname shows the Ubuntu image's own kernel)")

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.status = control.start_cloud(port=config.cloud_port, home=config.home)
        if self.status.note:
            print(f"labkit: {self.status.note}", file=sys.stderr)

    def session_kwargs(self) -> dict[str, Any]:
        return {**control.admin_credentials(self.config.home), "region_name": self.config.region}

    @property
    def endpoint_url(self) -> str | None:
        return self.status.endpoint

    def describe(self) -> dict[str, str]:
        return {"target": "local cloud", "endpoint": self.as_on_aws("api", self.status.endpoint or ""),
                "region": self.config.region, "account": "123456789012 (simulated)", "cost": "free"}

    def aws_name(self, kind: str, name: str = "") -> str:
        """An example of the DNS name AWS gives where the local cloud shows an address: ``kind`` is api, instance
        or db (``name``: the DB instance's identifier)."""
        region = self.config.region
        return {"api": f"https://ec2.{region}.amazonaws.com, one per service",
                "instance": "ec2-3-91-20-4." + ("compute-1.amazonaws.com" if region == "us-east-1"
                                                 else f"{region}.compute.amazonaws.com"),
                "db": f"{name or 'name'}.c1a2b3c4d5e6.{region}.rds.amazonaws.com"}[kind]

    def as_on_aws(self, kind: str, address: str, name: str = "") -> str:
        """A local address, with the kind of DNS name that stands there on AWS."""
        return f"{address} (on AWS a DNS name like {self.aws_name(kind, name)})" if address else address

    def require_confirmation(self, action: str, confirm: bool = False) -> None:
        """Nothing on the local cloud costs money or touches a real account."""

    def lambda_runtime(self) -> str:
        """The functions' runtime: the Python of the Lambda runtime environment that runs them here (.venv-lambda)."""
        return lambda_platform.runtime()

    def guard(self, session: Any) -> None:
        """Nothing to guard: every call stays on this machine."""

    def db_ca_bundle(self, region: str | None = None) -> bytes:
        """The local cloud's RDS CA certificate: what the RDS CA bundle is on AWS (it signs every DB server's
        certificate), for clients to verify the database server and its name. It is the region's too."""
        path = Path(self.status.home) / "rds-ca" / "ca.pem"
        if not path.exists():
            raise CloudError(f"the local cloud has no RDS CA certificate at {path}",
                             "restart the local cloud: labkit cloud stop, then run the step again")
        return path.read_bytes()

    def fire_schedule(self, rule_arn: str, hours: float, invoke: Any) -> list[dict[str, Any]]:
        """Move the lab clock forward; the local scheduler fires the rule at each due instant."""
        result = control.advance_clock(hours * 3600, self.config.home)
        return [f for f in result["firings"] if f.get("rule_arn") == rule_arn]  # (schedules' have none)

    def lab_time(self) -> str:
        now: str = control.lab_clock(self.config.home)["now"]
        return now

    def realistic(self, on: bool = True) -> dict[str, Any]:
        """Take AWS's time (RDS reboots, IAM propagation, endpoints pending) or do it at once
        (:mod:`labkit.localcloud.core.timing`); the answer is the cloud's new setting."""
        return control.set_timing(on, home=self.config.home)

    def timing(self) -> dict[str, Any]:
        """Whether the cloud takes AWS's time now, and its delays (what :meth:`realistic` would give back)."""
        return control.cloud_timing(self.config.home)

    def checkip_url(self) -> str:
        """Where the local cloud tells a caller its address, as https://checkip.amazonaws.com does on AWS."""
        return control.checkip_url(self.config.home)

    def public_port(self, address: str, port: int) -> tuple[int, str]:
        """The port at which your computer reaches ``port`` of the public IP ``address``, with a one-line note
        when it is another: the local cloud remaps a port that another program on this computer holds."""
        reached = control.remapped_ports(self.config.home).get(f"{address}:{port}")
        if not reached:
            return port, ""
        local = int(reached.rsplit(":", 1)[1])
        start = control.unprivileged_port_start()
        why = (f"binding a port below {start} needs root here" if port < start and os.geteuid()
               else f"another program here holds port {port}")
        return local, (f"port {port} is remapped to {local} on this computer because {why}; "
                       f"on AWS the instance's own port {port} answers")

    def browser_url(self, url: str) -> str:
        """Where a student's browser opens ``url``: as is on their own machine; through the Hub on JupyterHub.

        On a Hub the browser is not on the server, so the lab's addresses are reached through the student's
        Jupyter server (jupyter-server-proxy's ``/user/<name>/proxy/<host>:<port>/``).
        """
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        if not prefix:
            return url
        parts = urllib.parse.urlsplit(url)
        host = socket.gethostbyname(parts.hostname or "127.0.0.1")
        # The server's public URL (JupyterHub sets it when the Hub's public_url is configured), else its path,
        # which a browser resolves against the Hub's address it already shows.
        server = os.environ.get("JUPYTERHUB_PUBLIC_URL") or prefix
        return f"{server.rstrip('/')}/proxy/{host}:{parts.port or 80}{parts.path or '/'}"


# RDS's global CA bundle: the certificate authorities of every region (docs: "Using SSL/TLS to encrypt a connection
# to a DB instance"). Downloaded once, when the aws target first packages a function, and kept in .cache.
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
RDS_CA_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "rds-global-bundle.pem"
READ_ONLY = ("Describe", "Get", "List", "Head", "Filter", "Lookup", "Search", "Simulate")
# Calls whose name does not say whether they change anything: what labkit sends with them decides. The code that
# sends one only to look (a read-only SQL query or a status on the instance; the validator's lookup, or an order it
# refuses before it touches the database) marks that call with as_read(); every other one needs confirmation.
MARKABLE_READS = frozenset({"ssm:SendCommand", "lambda:Invoke"})
_marked_reads: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("labkit_marked_reads",
                                                                              default=frozenset())
CHECKIP_URL = "https://checkip.amazonaws.com"


@contextlib.contextmanager
def as_read(*calls: str) -> Iterator[None]:
    """Within the block, the calls named (``"ssm:SendCommand"``, ``"lambda:Invoke"``) made by this thread are reads:
    an unconfirmed aws lab sends them. For labkit's own calls that only look, never for one that may change
    something; only the calls in ``MARKABLE_READS`` can be marked."""
    unknown = set(calls) - MARKABLE_READS
    if unknown:
        raise ValueError(f"only {', '.join(sorted(MARKABLE_READS))} can be marked as reads, not {sorted(unknown)}")
    token = _marked_reads.set(_marked_reads.get() | frozenset(calls))
    try:
        yield
    finally:
        _marked_reads.reset(token)


def is_read(service: str, operation: str) -> bool:
    """Whether the call ``service`` ``operation`` (botocore's names: ``ssm``, ``SendCommand``) is a read here."""
    return operation.startswith(READ_ONLY) or f"{service}:{operation}" in _marked_reads.get()


class AwsTarget:
    """A real AWS account through the standard credential chain. Nothing happens without being asked:
    until the lab is confirmed, every API call that is not a read (Describe*, Get*, List*, ..., or a call marked
    with :func:`as_read`) is refused before it leaves this machine, with the cost table, whichever entry point
    made it."""

    name: ClassVar[str] = "aws"
    poll_seconds: ClassVar[float] = 15
    cell_timeout: ClassVar[int] = 7200
    bills: ClassVar[bool] = True
    unreachable_fix: ClassVar[str] = "check your credentials and network (`aws sts get-caller-identity`)"
    instance_runs_as: ClassVar[str] = "a virtual machine in AWS's data centre (EC2), booted from the image"
    instance_kernel_note: ClassVar[str] = ""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.confirmed = config.confirm

    def guard(self, session: Any) -> None:
        """Refuse writes on ``session``'s clients until confirmed (botocore's before-parameter-build event)."""
        session.events.register_first("before-parameter-build.*.*", self._before_call)

    def _before_call(self, model: Any, **_kwargs: Any) -> None:
        if not self.confirmed and not is_read(model.service_model.service_name, model.name):
            self.require_confirmation(f"{model.service_model.service_name} {model.name}")

    def session_kwargs(self) -> dict[str, Any]:
        return {"region_name": self.config.region}

    @property
    def endpoint_url(self) -> str | None:
        return None

    def describe(self) -> dict[str, str]:
        import boto3

        identity = boto3.client("sts", region_name=self.config.region).get_caller_identity()
        return {"target": "AWS", "endpoint": "AWS public endpoints", "region": self.config.region,
                "account": identity["Account"], "cost": "charged to this account: see the cost table"}

    def require_confirmation(self, action: str, confirm: bool = False) -> None:
        """Raise ConfigError, with the cost table, unless this lab (or this call) is confirmed."""
        if confirm:
            self.confirmed = True
        if self.confirmed:
            return
        from labkit.costs import cost_frame  # pandas: not for `labkit --help`, which reads TARGETS here

        table = cost_frame(self.config.region)
        total = table.iloc[-1]["USD per hour"]
        raise ConfigError(
            f"{action}: lab {self.config.name!r} on a real AWS account (region {self.config.region}) "
            f"needs confirmation first. While it exists it costs about ${total:.3f} per hour:\n"
            f"{table.to_string(index=False)}",
            "once you have read the table: set `confirm = True` in the notebook's parameters cell, "
            "`labkit run|up|down --yes`, or `labkit.Lab(..., confirm=True)`; finish with 99_teardown")

    def lambda_runtime(self) -> str:
        """The functions' runtime on AWS, whatever Python this machine has: one AWS supports longest."""
        return lambda_platform.AWS_RUNTIME

    def db_ca_bundle(self, region: str | None = None) -> bytes:
        """RDS's global CA bundle (every region's RDS certificate authorities), downloaded once into .cache; with
        ``region``, only the certificates a DB instance there chains to (:func:`region_bundle`)."""
        data = self._global_bundle()
        return data if region is None else region_bundle(data, region)

    @staticmethod
    def _global_bundle() -> bytes:
        if RDS_CA_CACHE.exists():
            return RDS_CA_CACHE.read_bytes()
        hint = f"download {RDS_CA_URL} yourself to {RDS_CA_CACHE}"
        try:
            with urllib.request.urlopen(RDS_CA_URL, timeout=30) as response:
                data: bytes = response.read()
        except OSError as exc:
            raise ConfigError(f"could not download the RDS CA bundle from {RDS_CA_URL}: {exc}", hint) from exc
        _check_bundle(data, hint)
        RDS_CA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = RDS_CA_CACHE.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(RDS_CA_CACHE)  # never a half-written bundle in the cache
        return data

    def fire_schedule(self, rule_arn: str, hours: float, invoke: Any) -> list[dict[str, Any]]:
        """AWS's clock cannot be moved: invoke the target with the scheduled event the rule would send."""
        return [invoke()]

    def checkip_url(self) -> str:
        """AWS's own service that answers the caller's public address (the console's "My IP" comes from it)."""
        return CHECKIP_URL

    def lab_time(self) -> str:
        import datetime as dt

        return dt.datetime.now(dt.timezone.utc).isoformat()

    def realistic(self, on: bool = True) -> dict[str, Any]:
        """AWS always takes its time: nothing to turn on (or off)."""
        return self.timing()

    def timing(self) -> dict[str, Any]:
        """AWS always takes its own time."""
        return {"realistic": True, "delays": {}, "note": "AWS takes its own time; it cannot be made faster"}

    def public_port(self, address: str, port: int) -> tuple[int, str]:
        """On AWS a public IP's port is the instance's own."""
        return port, ""

    def browser_url(self, url: str) -> str:
        """A public address on AWS opens from any browser as it is."""
        return url

    def aws_name(self, kind: str, name: str = "") -> str:
        """Nothing to add: on AWS an address is already AWS's own."""
        return ""

    def as_on_aws(self, kind: str, address: str, name: str = "") -> str:
        """On AWS an address is already AWS's own DNS name."""
        return address


REGION_IN_NAME = re.compile(r"\b([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)\b")  # us-east-1, us-gov-west-1, ...


def region_bundle(data: bytes, region: str) -> bytes:
    """The certificates of ``data`` (RDS's global bundle) that a DB instance in ``region`` can chain to: those whose
    name says that region ("Amazon RDS eu-west-1 Root CA RSA2048 G1") and those that name none (a global root).
    A few kilobytes instead of the whole bundle's many: small enough to send to the instance in a command."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    kept = []
    for certificate in x509.load_pem_x509_certificates(data):
        names = " ".join(str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
        regions = REGION_IN_NAME.findall(names)
        if not regions or region in regions:
            kept.append(certificate.public_bytes(Encoding.PEM))
    return b"".join(kept)


def _check_bundle(data: bytes, hint: str) -> None:
    """Raise ConfigError unless ``data`` is PEM certificates of certificate authorities."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(data)
        authorities = [c for c in certificates
                       if c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca]
    except (ValueError, x509.ExtensionNotFound) as exc:  # not PEM, or a certificate without BasicConstraints
        raise ConfigError(f"{RDS_CA_URL} did not return CA certificates ({exc})", hint) from None
    if len(authorities) != len(certificates):
        raise ConfigError(f"{RDS_CA_URL} returned certificates that are not certificate authorities", hint)


TARGET_CLASSES: dict[str, type[LocalTarget] | type[AwsTarget]] = {"local": LocalTarget, "aws": AwsTarget}


def make_target(config: LabConfig) -> Target:
    """The target ``config`` names (the local one starts the local cloud unless it runs)."""
    return TARGET_CLASSES[config.target](config)


def target_class(name: str) -> type[Target]:
    """The class of the target ``name``, to ask what it is like before a lab exists."""
    if name not in TARGET_CLASSES:
        raise ConfigError(f"unknown target {name!r}", f"use one of {', '.join(TARGETS)}")
    return TARGET_CLASSES[name]


def confirm_before(config: LabConfig, action: str, confirm: bool = False) -> None:
    """Refuse ``action`` (with the cost table) on a target that bills, unless confirmed; a free target says yes.
    Cheap: it starts no local cloud and calls no AWS API."""
    if target_class(config.target).bills:
        AwsTarget(config).require_confirmation(action, confirm)


def default_region(target: str) -> str:
    """The region when none is given: LABKIT_REGION; on ``aws`` then the standard chain (AWS_REGION,
    AWS_DEFAULT_REGION, the profile's ``region``); the local cloud's default is us-east-1."""
    region = os.environ.get("LABKIT_REGION")
    if region or target != "aws":
        return region or "us-east-1"
    import boto3

    region = os.environ.get("AWS_REGION") or boto3.Session().region_name
    if not region:
        raise ConfigError("no AWS region is configured",
                          "set `region` in the notebook's parameters cell, pass --region, or configure one "
                          "(export AWS_REGION=eu-west-1, or `aws configure set region eu-west-1`)")
    return region


def config_from_environment(**overrides: Any) -> LabConfig:
    """A LabConfig from LABKIT_TARGET / LABKIT_LAB / the region chain, overridden by explicit values."""
    values: dict[str, Any] = {"target": os.environ.get("LABKIT_TARGET", DEFAULT_TARGET),
                              "name": os.environ.get("LABKIT_LAB", "orders-lab")}
    if os.environ.get("LABKIT_APP_PORT"):
        values["app_port"] = int(os.environ["LABKIT_APP_PORT"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values.get("region"):
        values["region"] = default_region(values["target"])
    return LabConfig(**values)

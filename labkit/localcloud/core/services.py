"""The local cloud's services: one small protocol, a registry the daemon loops over, and the hooks.

A *service* is a part of the local cloud that does more than keep moto's records: it runs processes
(RDS servers, Lambda workers, EC2 sandboxes), keeps a clock (the scheduler) or decides what AWS would
refuse (the network and IAM models). Each is a :class:`Service` built by a factory that takes a
:class:`CloudContext` -- everything it may depend on is passed in there, including the
:class:`Registry` through which services find each other by class, typed (``ctx.services.require(LambdaService)``, or
``find`` for an optional one), never through attributes of the daemon. :func:`labkit.localcloud.server.default_services` lists the
factories; a new model plugs in by adding its factory there (and its moto patches, if any, to its package's
``patches.py``, listed in :func:`labkit.localcloud.server.patch_lists`).

Lifecycle -- the daemon calls these on every registered service:

``start()``        once, after every service is registered and before the first request
``stop_all()``     end every process the service runs (on shutdown and before a reset); called in
                   reverse registration order, so a service is stopped before those it uses
``after_reset()``  moto's state was just emptied: forget whatever referred to it
``summary()``      JSON-able figures shown under ``services.<name>`` by ``/_labkit/health``
``routes()``       the service's own ``/_labkit/...`` endpoints

State -- what the lab keeps across a stop, a crash and a reboot (:mod:`.state`; no-ops unless overridden):

``save_state()``   the service's own state as a JSON-able dict (None: nothing to keep): quick, and taking no
                   lock that is held across a request or a process; written when the service calls
                   ``ctx.state.changed(name)`` (with the request being answered, else within half a second)
``load_state(saved, restored)``  once, before ``start()``: ``saved`` is what ``save_state()`` last returned (None
                   if nothing), ``restored`` says moto's records were loaded too (a restart is a host reboot:
                   take back what you ran); a service that changes moto's records outside a request calls
                   ``ctx.state.mark(service, region)``
``export_state(folder)``  a checkpoint is being made: put the service's files in ``folder`` (databases as SQL,
                   disks) and return what the restore needs to know (JSON-able), or None; restored, they are
                   ``ctx.state.imported(name)`` at the next start

Hooks -- no-ops unless a service overrides them:

``on_request(call)``  runs before moto for every AWS API request (everything but ``/_labkit/`` and
    ``/moto-api/``), in registration order. Return ``None`` to let the request through -- after
    annotating it if you like (``call.annotations["principal"] = ...``); later hooks and the moto
    code that serves the request read the annotations through :func:`current_request`. Return a
    werkzeug ``Response`` to answer the request yourself (usually ``call.refuse(code, message, status)``,
    which renders an error in the request's own protocol); later hooks and moto are then skipped.
``serve(call)``  runs once a request has passed every ``on_request``, in registration order: return a werkzeug
    ``Response`` to serve the request instead of moto (as moto would answer it: a service does this only where
    moto's dispatch is a cost the answer does not need, such as Lambda's Invoke), or ``None`` to let moto serve it.
    Unlike an ``on_request`` answer, a served request is a served one: ``after_request`` and ``on_answer`` follow,
    and :func:`current_request` is set, as for moto.
``after_request(call)``  runs once moto (or a service's ``serve``) has served a request that passed every
    ``on_request`` (the network model re-decides paths after a change).
``on_answer(call, status, error_body, error_type)``  runs for every AWS API request once it has been
    answered, refused or not (the event history records it).
``on_launch(launch)``  runs for every process the cloud starts (database servers, Lambda workers,
    user data, SSM commands, systemd units), in registration order. Add variables to
    ``launch.env``; add shared libraries with ``launch.preload(path)``, never by assigning
    ``LD_PRELOAD``, so that several services (the clock's libfaketime, the network's connect hook)
    can preload side by side.
"""
from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from werkzeug.utils import cached_property
from werkzeug.wrappers import Request, Response

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.requests import Classified, classify, guess_protocol
from labkit.localcloud.core.statefiles import Journal, StateError

log = logging.getLogger("labkit.localcloud")
Route = Callable[[Request], Any]
S = TypeVar("S", bound="Service")
_CURRENT: contextvars.ContextVar[ApiRequest | None] = contextvars.ContextVar("labkit_api_request", default=None)
# The user agent of the cloud's own bookkeeping calls (the network model reading the VPC): not the account's
# activity, so the event history (labkit.localcloud.trail) leaves them out.
INTERNAL_AGENT = "labkit-localcloud-internal"
SIGV2_REGION = "us-east-1"  # S3 takes SigV2 only where it always has; the lab's region
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Service:
    """Base class of the local cloud's services; override what the service needs, keep the rest."""

    name: ClassVar[str] = ""

    def start(self) -> None:
        """Start background threads; every other service is registered by now."""

    def stop_all(self) -> None:
        """End every process this service runs."""

    def after_reset(self) -> None:
        """moto's state was emptied (``labkit cloud reset``): drop what referred to it."""

    def summary(self) -> dict[str, Any]:
        """JSON-able figures for ``/_labkit/health``."""
        return {}

    def routes(self) -> list[tuple[str, str, Route]]:
        """``(method, path, handler)`` for the service's ``/_labkit/...`` endpoints; a path ending in
        ``/*`` matches every path under it. A handler returns a JSON-able value or a ``Response``."""
        return []

    def on_request(self, call: ApiRequest) -> Response | None:
        """Look at an AWS API request before moto does; a ``Response`` answers it instead of moto."""
        return None

    def serve(self, call: ApiRequest) -> Response | None:
        """Serve ``call`` (which every request hook let through) instead of moto; None lets moto serve it."""
        return None

    def after_request(self, call: ApiRequest) -> None:
        """moto has served (or failed) ``call``; runs for every request that reached moto."""

    def on_launch(self, launch: Launch) -> None:
        """Adjust the environment of a process the cloud is about to start."""

    def on_answer(self, call: ApiRequest, status: int, error_body: bytes | None, error_type: str | None) -> None:
        """``call`` has been answered with HTTP ``status`` (by moto, or refused by a request hook); for an error,
        ``error_body`` and the ``x-amzn-ErrorType`` header. Runs on the request path: keep it cheap."""

    def save_state(self) -> dict[str, Any] | None:
        """The service's own state to keep (JSON-able), or None when it keeps none."""
        return None

    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        """Take back the saved state before ``start()`` (``restored``: moto's records were loaded as well)."""

    def export_state(self, folder: Path) -> dict[str, Any] | None:
        """Put the service's files of a checkpoint in ``folder``; return what its restore needs to know."""
        return None


@dataclass
class ApiRequest:
    """One AWS API request on its way to moto, with what the hooks learnt about it.

    Its cached properties are werkzeug's, which take no lock: Python 3.11's ``functools.cached_property`` holds one
    lock per property across all instances, so one request classifying a big body stalled every other request."""

    request: Request
    annotations: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def _scope(self) -> tuple[str | None, str | None, str | None]:
        auth, args = self.request.headers.get("Authorization", ""), self.request.args
        found = _CREDENTIAL.search(auth) or _CREDENTIAL.search("Credential=" + args.get("X-Amz-Credential", ""))
        if not found and not auth and "AWSAccessKeyId" in args:  # an S3 URL presigned with SigV2 names no region
            return args["AWSAccessKeyId"], SIGV2_REGION, "s3"
        return (found.group(1), found.group(2), found.group(3)) if found else (None, None, None)

    @property
    def access_key_id(self) -> str | None:
        """The caller's access key id from the SigV4 credential scope (header or presigned URL)."""
        return self._scope[0]

    @property
    def region(self) -> str | None:
        return self._scope[1]

    @property
    def service(self) -> str | None:
        """The signing name (``ec2``, ``lambda``, ``s3``, ``secretsmanager``, ...)."""
        return self._scope[2]

    @cached_property
    def body(self) -> bytes:
        """The request body; reading it here leaves it readable for moto."""
        data = self.request.get_data(cache=True)
        self.request.environ["wsgi.input"] = io.BytesIO(data)
        self.request.environ["CONTENT_LENGTH"] = str(len(data))
        return data

    @cached_property
    def classified(self) -> Classified | None:
        """What the request asks, by :func:`.requests.classify` (the one classification every hook and IAM
        share): ``operation`` (``RunInstances``, ``Invoke``, ``GetSecretValue``), ``protocol``, ``params``,
        ``action``. None for a request without a SigV4 signature (no service named)."""
        if not self.service:
            return None
        environ = self.request.environ
        return classify(self.service, self.request.method, self.request.path, environ.get("QUERY_STRING", ""),
                        self.request.headers, None if self.service == "s3" else self.body)

    @property
    def operation(self) -> str | None:
        return (self.classified.operation or None) if self.classified else None

    @property
    def protocol(self) -> str:
        """The protocol to answer in (an unsigned request: the one its shape shows)."""
        if self.classified:
            return self.classified.protocol
        return guess_protocol(self.request.path, self.request.environ.get("QUERY_STRING", ""), self.request.headers)

    def refuse(self, code: str, message: str, status: int = 400) -> Response:
        """An error answer in the request's own protocol, as AWS sends it (:func:`.errors.render`)."""
        return AwsError(message, error_code=code, status=status).answer(self.protocol)


def current_request() -> ApiRequest | None:
    """The AWS API request the calling thread is serving, or None outside a request (background work)."""
    return _CURRENT.get()


@dataclass
class Launch:
    """A process the cloud is about to start, and the environment it will get.

    ``kind`` is one of ``rds`` (database server and its initialisation), ``lambda`` (a worker),
    ``ec2`` (anything run inside a sandbox: user data, SSM commands, systemd units); ``resource`` is
    the DB instance identifier, function ARN or instance id.
    """

    kind: str
    resource: str
    region: str
    env: dict[str, str]

    def preload(self, library: str) -> None:
        """Add a shared library to ``LD_PRELOAD``, keeping those other services added."""
        current = [p for p in re.split(r"[:\s]+", self.env.get("LD_PRELOAD", "")) if p]
        if library not in current:
            current.append(library)
        self.env["LD_PRELOAD"] = ":".join(current)


class Registry:
    """The services of one daemon, in registration order."""

    def __init__(self) -> None:
        self._services: dict[str, Service] = {}

    def add(self, service: S) -> S:
        if not service.name:
            raise ValueError(f"{type(service).__name__} has no name")
        if service.name in self._services:
            raise ValueError(f"a service named {service.name!r} is already registered")
        self._services[service.name] = service
        return service

    def find(self, kind: type[S]) -> S | None:
        """The service of class ``kind`` (registered under ``kind.name``), or None when the daemon runs without it."""
        service = self._services.get(kind.name)
        return service if isinstance(service, kind) else None

    def require(self, kind: type[S]) -> S:
        """The service of class ``kind``; it must be registered."""
        service = self.find(kind)
        if service is None:
            raise LookupError(f"no {kind.__name__} registered as {kind.name!r} (have {sorted(self._services)})")
        return service

    def __iter__(self) -> Iterator[Service]:
        return iter(list(self._services.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._services

    def start(self) -> None:
        for service in self:
            service.start()

    def stop_all(self) -> None:
        """Stop every service, last registered first; one failing does not keep the others running."""
        for service in reversed(list(self)):
            try:
                service.stop_all()
            except Exception:  # keep stopping the others; the sweep by marker catches the rest
                log.exception("stopping %s failed", service.name)

    def after_reset(self) -> None:
        for service in self:
            service.after_reset()

    def load_state(self, state: StateAccess) -> None:
        """Give each service its saved state, in registration order, before any starts. A saved state a service
        cannot take back (edited, or written by a labkit whose service kept another shape) is a StateError naming
        its file, as a damaged record is: the start is refused with what to do, never a traceback."""
        for service in self:
            saved = state.saved(service.name)
            try:
                service.load_state(saved, state.restored)
            except StateError:
                raise
            except Exception as exc:
                if saved is None:
                    raise
                raise StateError(f"{state.saved_file(service.name)} cannot be taken back by this labkit's "
                                 f"{service.name} service ({type(exc).__name__}: {exc})") from exc

    def summary(self) -> dict[str, dict[str, Any]]:
        return {service.name: service.summary() for service in self}

    def routes(self) -> list[tuple[str, str, Route]]:
        return [route for service in self for route in service.routes()]

    def check_request(self, call: ApiRequest) -> Response | None:
        """Run the request hooks; the first Response answers the request."""
        for service in self:
            answer = service.on_request(call)
            if answer is not None:
                return answer
        return None

    def serve(self, call: ApiRequest) -> Response | None:
        """The first service's answer to a request it serves itself, or None (moto serves it)."""
        for service in self:
            answer = service.serve(call)
            if answer is not None:
                return answer
        return None

    def after_request(self, call: ApiRequest) -> None:
        for service in self:
            service.after_request(call)

    def answered(self, call: ApiRequest, status: int, error_body: bytes | None, error_type: str | None) -> None:
        for service in self:
            try:
                service.on_answer(call, status, error_body, error_type)
            except Exception:  # a record that cannot be made must not fail the answer already given
                log.exception("%s could not note the answer to %s", service.name, call.operation)

    def prepare_launch(self, launch: Launch) -> dict[str, str]:
        """Run the launch hooks and return the finished environment."""
        for service in self:
            service.on_launch(launch)
        return launch.env


@contextlib.contextmanager
def serving(call: ApiRequest) -> Iterator[ApiRequest]:
    """Make ``call`` the :func:`current_request` of this thread while moto serves it."""
    token = _CURRENT.set(call)
    try:
        yield call
    finally:
        _CURRENT.reset(token)


class StateAccess:
    """What a service may ask of the lab's saved state (``ctx.state``). This base keeps nothing (``LABKIT_STATE=off``,
    and tests without a daemon); :class:`labkit.localcloud.core.state.Persistence` is the real one."""

    enabled = False
    restored = False  # a saved lab was loaded: services take back what they ran (a restart is a host reboot)
    relocation: dict[str, Any] | None = None  # the manifest of a checkpoint being taken in (this lab's or another's)

    def saved(self, name: str) -> dict[str, Any] | None:
        """The service's state as its ``save_state()`` last returned it (None: none saved)."""
        return None

    def saved_file(self, name: str) -> str:
        """Where the service's saved state is kept (for messages)."""
        return f"the saved state of {name}"

    def changed(self, name: str) -> None:
        """The service's own state changed: saved with the request being answered, else within half a second."""

    def mark(self, service: str, region: str | None = None) -> None:
        """moto's records of ``service`` (moto's name: ``ec2``, ``rds``, ``sts``) changed outside a request."""

    def commit(self) -> None:
        """Write every change noted so far now (before answering a route that made one)."""

    def imported(self, name: str) -> Path | None:
        """The files a restored checkpoint brought for the service (``state/import/<name>``), if any."""
        return None

    def journal(self, name: str, keep: int) -> Journal | None:
        """An append-only journal of the service's (``state/<name>/journal.jsonl``), or None when nothing is kept."""
        return None

    def rewrite(self, old: str, new: str) -> int:
        """Replace the text ``old`` by ``new`` in every string of moto's records and the saved states (addresses of
        a lab that moved to another block); returns how many strings changed."""
        return 0

    @contextlib.contextmanager
    def settling(self, what: str) -> Iterator[None]:
        """Note work the lab is not usable without (a database restarting, an instance booting) while it runs."""
        yield

    @contextlib.contextmanager
    def batch(self) -> Iterator[dict[str, str]]:
        """A run of requests the daemon sends itself (what the services write about themselves through the public
        API): the requests sent meanwhile with the headers it yields are saved together when the block ends, before
        it returns, instead of one by one before each answer (their only reader is the block's own code)."""
        yield {}


@dataclass
class CloudContext:
    """What a service may use of the daemon: its folders, its address and the other services."""

    home: Path
    endpoint: str
    cloud_id: str
    services: Registry
    base_env: Callable[[str], dict[str, str]]
    state: StateAccess = field(default_factory=lambda: StateAccess())

    def service_dir(self, name: str, fresh: bool = False) -> Path:
        """``home/name``, created; ``fresh`` empties it first (moto keeps records in memory only, so
        data an earlier daemon left there is orphaned)."""
        path = self.home / name
        if fresh:
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def child_env(self, kind: str, resource: str, extra: dict[str, str] | None = None,
                  region: str = "us-east-1") -> dict[str, str]:
        """Environment for a process the cloud starts: the cloud's marker and credentials pointing back
        here, ``extra``, then whatever the services' launch hooks add."""
        env = {**self.base_env(region), **(extra or {})}
        return self.services.prepare_launch(Launch(kind, resource, region, env))

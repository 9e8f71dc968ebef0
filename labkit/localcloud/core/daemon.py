"""The local cloud daemon: moto's AWS APIs on 127.0.0.1 plus the services that run real processes.

:class:`LocalCloud` is the WSGI application and its lifecycle. ``/_labkit/...`` paths are the daemon's own API
(its routes and the services'), ``/moto-api/...`` is moto's (closed: it would bypass IAM), and every other
request is an AWS API call: the services' request hooks see it first, then moto serves it. The services and
their hooks are described in :mod:`.services`; every change to moto is a :class:`.patches.Patch` kept beside the
service it serves. Which services and patches a daemon has is not decided here but by its caller
(:mod:`labkit.localcloud.server`, which starts it as ``python -m labkit.localcloud.server``): this core knows no
service package.

With a :class:`.state.Persistence` the daemon keeps the lab: it loads the saved records before any service is
made, gives each service its saved state before any starts, saves what a mutating request changed before that
request's answer leaves, and saves everything once more when it stops (:mod:`.state`).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import hmac
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from labkit.localcloud.control import HOST, TOKEN_ENV, TOKEN_HEADER
from labkit.localcloud.core import checkpoint, http_headers, patches
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.http_keepalive import KeepAliveRequestHandler, noting_failures
from labkit.localcloud.core.services import ApiRequest, CloudContext, Registry, Route, Service, StateAccess, serving
from labkit.localcloud.core.state import Persistence
from labkit.localcloud.procs import CLOUD_MARKER, HOME_MARKER

if TYPE_CHECKING:  # pragma: no cover - types only
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("labkit.localcloud")
ServiceFactory = Callable[[CloudContext], Service]


class LocalCloud:
    """The daemon's state: its folder, its services and its HTTP server."""

    def __init__(self, home: Path, port: int, cloud_id: str, factories: Iterable[ServiceFactory],
                 patch_lists: Iterable[patches.PatchList] = (), persistence: Persistence | None = None) -> None:
        self.home, self.port, self.cloud_id = home, port, cloud_id
        self.control_token = os.environ.pop(TOKEN_ENV, "") or secrets.token_urlsafe(32)
        self.endpoint = f"http://{HOST}:{port}"
        self.started_at = time.time()
        self.services = Registry()
        self.patches = patches.apply(self.services, (patches.core_patches, *patch_lists))
        self.persistence = persistence
        if persistence is not None:  # moto's records first (StateError: the caller refuses to start)
            persistence.load()
        state = persistence if persistence is not None else StateAccess()
        self.context = CloudContext(home, self.endpoint, cloud_id, self.services, self._base_env, state)
        for factory in (ClockService, *factories):  # the clock first: it stops last
            self.services.add(factory(self.context))
        self.routes: dict[tuple[str, str], Route] = {}
        self.route("GET", "/_labkit/health", self._health)
        self.route("POST", "/_labkit/shutdown", self._shutdown_route)
        self.route("POST", "/_labkit/reset", lambda _r: self.reset())
        self.route("GET", "/_labkit/state", self._state_route)
        self.route("POST", "/_labkit/state/checkpoint", self._checkpoint_route)
        for method, path, handler in self.services.routes():
            self.route(method, path, handler)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer | None = None  # set by serve_forever
        self._last_request = time.monotonic()
        self.services.load_state(state)
        self.services.start()
        if persistence is not None:
            persistence.serve(self.services)
        threading.Thread(target=self._trim_when_idle, daemon=True, name="trim-when-idle").start()

    def _trim_when_idle(self, quiet: float = 10.0) -> None:
        """Give the heap's free memory back to the system once the lab goes quiet: a lab idles most of its
        life, and what a burst of API calls (JSON models, responses, deployment packages) freed would
        otherwise stay in this process's resident set."""
        trim = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None)
        trimmed_at = 0.0
        while trim is not None:
            last = self._last_request
            time.sleep(max(0.5, quiet - (time.monotonic() - last)) if last != trimmed_at else quiet)
            if last == self._last_request and last != trimmed_at:  # quiet for `quiet` seconds since `last`
                gc.collect()
                trim(0)
                trimmed_at = last

    def route(self, method: str, path: str, handler: Route) -> None:
        """Register a ``/_labkit`` endpoint; the handler returns a JSON-able value or a Response."""
        if (method, path) in self.routes:
            raise ValueError(f"two handlers for {method} {path}")
        self.routes[(method, path)] = handler

    def _base_env(self, region: str) -> dict[str, str]:
        """What every process the cloud starts gets: the marker and the endpoint, no credentials (a Lambda
        worker gets its role session's, an EC2 instance asks its metadata service)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            CLOUD_MARKER: self.cloud_id,
            HOME_MARKER: str(self.home),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }

    # -- the WSGI application ---------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self._last_request = time.monotonic()
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_labkit/"):
            return self._own_api(environ, start_response)
        if path.startswith("/moto-api"):  # moto's dashboard and data dump would bypass IAM
            return Response("Forbidden", status=403)(environ, start_response)
        call = ApiRequest(Request(environ))
        try:
            answer = self.services.check_request(call)
        except AwsError as error:  # a hook may raise the error AWS answers with, as moto's code may
            answer = error.answer(call.protocol)
        if answer is not None:
            failed = answer.status_code >= 400
            self.services.answered(call, answer.status_code, answer.get_data() if failed else None,
                                   answer.headers.get("x-amzn-ErrorType") if failed else None)
            return answer(environ, start_response)
        sent: list[Any] = []

        def noting_status(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            sent[:] = [int(status[:3]), headers]
            return start_response(status, headers, exc_info)

        saving = self.persistence.request_lock(call) if self.persistence is not None else contextlib.nullcontext()
        try:
            with serving(call), saving:
                served = self._served(call)
                result: Iterable[bytes] = (served or self._moto)(environ, noting_status)  # (moto types it Any)
                status, headers = sent if sent else (200, [])  # a lazy start_response: judged as it came
                if status < 400:
                    self.services.answered(call, status, None, None)
                    if self.persistence is not None:  # saved before the answer leaves
                        self.persistence.after_request(call, status)
                    return result
                body = b"".join(result)  # an error answer is small: read it for the event history
                if hasattr(result, "close"):
                    result.close()
                error_type = next((v for k, v in headers if k.lower() == "x-amzn-errortype"), None)
                self.services.answered(call, status, body, error_type)
                return [body]
        finally:
            self.services.after_request(call)

    def _served(self, call: ApiRequest) -> Response | None:
        """A service's own answer to a request it serves instead of moto (:meth:`.services.Service.serve`); an
        :class:`AwsError` it raises is answered as moto answers one raised inside it."""
        try:
            return self.services.serve(call)
        except AwsError as error:
            return error.answer(call.protocol)

    def _authorized(self, request: Request) -> bool:
        """Health, checkip (open, as AWS's is) and instance metadata (which checks its own IMDSv2 tokens) are open;
        the rest of /_labkit needs the control token of this lab."""
        if request.path in ("/_labkit/health", "/_labkit/checkip") or request.path.startswith("/_labkit/imds/"):
            return True
        offered = request.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(offered.encode(), self.control_token.encode())

    @staticmethod
    def _forbidden() -> Response:
        return Response(json.dumps({"error": "this local cloud's control API needs its owner's token"}),
                        status=403, mimetype="application/json")

    def _own_api(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if not self._authorized(request):
            return self._forbidden()(environ, start_response)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            prefixes = sorted((p for m, p in self.routes if m == request.method and p.endswith("/*")
                               and request.path.startswith(p[:-1])), key=len, reverse=True)
            handler = self.routes[(request.method, prefixes[0])] if prefixes else None
        if handler is None:
            response = Response(json.dumps({"error": f"no such endpoint {request.method} {request.path}"}),
                                status=404, mimetype="application/json")
        else:
            try:
                result = handler(request)
                response = result if isinstance(result, Response) else Response(
                    json.dumps(result, default=str), mimetype="application/json")
            except LookupError as exc:
                response = Response(json.dumps({"error": str(exc).strip("'\"")}), status=404,
                                    mimetype="application/json")
            except ValueError as exc:
                response = Response(json.dumps({"error": str(exc)}), status=400, mimetype="application/json")
        return response(environ, start_response)

    def _health(self, _request: Request) -> dict[str, Any]:
        return {
            "status": "ok", "pid": os.getpid(), "port": self.port, "home": str(self.home),
            "cloud_id": self.cloud_id, "uptime_seconds": round(time.time() - self.started_at, 3),
            "services": self.services.summary(),
            "state": self.persistence.summary() if self.persistence is not None else {"enabled": False},
        }

    def _state_route(self, request: Request) -> dict[str, Any]:
        """What the lab's state costs and holds; ``?audit=1`` also lists objects of another moto service a save
        copies instead of referring to (there should be none)."""
        if self.persistence is None:
            return {"enabled": False}
        answer = self.persistence.summary()
        if request.args.get("audit"):
            answer["audit"] = self.persistence.audit()
        return answer

    def _checkpoint_route(self, request: Request) -> dict[str, Any]:
        """Fill the folder named by ``staging`` with a checkpoint of the lab (:mod:`.checkpoint`)."""
        if self.persistence is None:
            raise ValueError("this local cloud keeps no state (LABKIT_STATE=off): it cannot make a checkpoint")
        staging = Path(str((request.get_json(silent=True) or {}).get("staging", "")))
        if not staging.is_absolute():
            raise ValueError("name the checkpoint's folder by its absolute path (staging)")
        return checkpoint.make(self.persistence, self.services, staging)

    def _shutdown_route(self, _request: Request) -> dict[str, str]:
        self.services.stop_all()

        def stop_serving() -> None:
            time.sleep(0.2)  # let this answer reach the caller first
            if self._server is not None:  # (a request came, so it serves)
                self._server.shutdown()

        threading.Thread(target=stop_serving, daemon=True).start()
        return {"status": "stopping"}

    def reset(self) -> dict[str, str]:
        """Stop every service's processes, empty moto through its own ``/moto-api/reset``, then let each
        service forget what referred to moto's state."""
        self.services.stop_all()
        answer = Client(self._moto).post("/moto-api/reset")
        if answer.status_code != 200:
            raise RuntimeError(f"moto refused its reset: {answer.status} {answer.get_data(as_text=True)}")
        self.services.after_reset()
        if self.persistence is not None:  # the empty lab is the saved one now
            self.persistence.reset()
        return {"status": "reset"}

    def serve_forever(self) -> None:
        http_headers.install()  # this process's HTTP heads (its requests, its Runtime APIs', its own calls' answers)
        self._server = server = make_server(HOST, self.port, noting_failures(self), threaded=True,
                                            request_handler=KeepAliveRequestHandler)
        state = {"pid": os.getpid(), "port": self.port, "cloud_id": self.cloud_id, "started_at": self.started_at,
                 "token": self.control_token}
        tmp = self.home / "cloud.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.home / "cloud.json")
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        log.info("local cloud listening on %s (home %s)", self.endpoint, self.home)
        try:
            server.serve_forever()
        finally:
            self.services.stop_all()
            if self.persistence is not None:
                self.persistence.close()
            log.info("local cloud stopped")

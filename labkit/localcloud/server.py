"""The local cloud daemon: moto's AWS APIs on 127.0.0.1 plus the hooks that run real processes.

Run as ``python -m labkit.localcloud.server --port N --home DIR --cloud-id ID`` (``labkit cloud start``
does this). ``/_labkit/...`` paths are the daemon's own API; everything else goes to moto.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from moto import backends as moto_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from labkit.localcloud.control import HOST, TOKEN_ENV, TOKEN_HEADER
from labkit.localcloud.procs import CLOUD_MARKER

log = logging.getLogger("labkit.localcloud")

# moto lists its own package folders from disk on every request to route it (175 stat calls); the list is
# fixed for the pinned version, so the daemon reads it once.
_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _MOTO_MODULES
Route = Callable[[Request], Any]


class LocalCloud:
    """The daemon's state: where it keeps things, the services with processes, and its HTTP server."""

    def __init__(self, home: Path, port: int, cloud_id: str) -> None:
        from labkit.localcloud import ec2, iam_service, imds, lambda_service, rds, scheduler

        self.home, self.port, self.cloud_id = home, port, cloud_id
        self.control_token = os.environ.pop(TOKEN_ENV, "") or secrets.token_urlsafe(32)
        self.endpoint = f"http://{HOST}:{port}"
        self.started_at = time.time()
        self.routes: dict[tuple[str, str], Route] = {}
        self._wipe_leftovers()
        self.iam = iam_service.install(self)
        self.imds = imds.MetadataService(self)
        self.rds = rds.install(self)
        self.lambdas = lambda_service.install(self)
        self.ec2 = ec2.install(self)
        self.scheduler = scheduler.install(self)
        self.route("GET", "/_labkit/health", self._health)
        self.route("POST", "/_labkit/shutdown", self._shutdown_route)
        self.route("POST", "/_labkit/reset", self._reset_route)
        # An address that accepts connections and never answers in time: what a service endpoint looks like
        # from a private subnet with no route to it (used to reproduce the tutorial's Lambda timeout).
        self.route("POST", "/_labkit/blackhole/*", self._blackhole)
        self.route("GET", "/_labkit/blackhole/*", self._blackhole)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = None

    # -- plumbing shared by the service modules -------------------------------------------------
    def route(self, method: str, path: str, handler: Route) -> None:
        """Register a ``/_labkit`` endpoint; the handler returns a JSON-able value or a Response."""
        self.routes[(method, path)] = handler

    def child_env(self, extra: dict[str, str] | None = None, region: str = "us-east-1") -> dict[str, str]:
        """Environment for a process the cloud starts: the marker and the endpoint, no credentials (a Lambda
        worker gets its role session's, an EC2 instance asks its metadata service)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            CLOUD_MARKER: self.cloud_id,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        env.update(extra or {})
        return env

    def service_dir(self, name: str) -> Path:
        path = self.home / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _wipe_leftovers(self) -> None:
        # moto keeps its records in memory only, so data folders from an earlier daemon are orphans.
        for name in ("rds", "lambda", "ec2"):
            shutil.rmtree(self.home / name, ignore_errors=True)

    # -- the WSGI application ---------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_labkit/"):
            return self._own_api(environ, start_response)
        if path.startswith("/moto-api"):  # moto's dashboard and data dump would bypass IAM
            return Response("Forbidden", status=403)(environ, start_response)
        refusal = self.iam(environ)
        if refusal is not None:
            return refusal(environ, start_response)
        return self._moto(environ, start_response)

    def _authorized(self, request: Request) -> bool:
        """Health, the black hole and instance metadata (which checks its own IMDSv2 tokens) are open; the rest
        of /_labkit needs the control token of this lab."""
        if request.path == "/_labkit/health" or request.path.startswith(("/_labkit/blackhole/", "/_labkit/imds/")):
            return True
        offered = request.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(offered.encode(), self.control_token.encode())

    def _own_api(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if not self._authorized(request):
            response = Response(json.dumps({"error": "this local cloud's control API needs its owner's token"}),
                                status=403, mimetype="application/json")
            return response(environ, start_response)
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            prefix = [h for (m, p), h in self.routes.items() if m == request.method and p.endswith("/*")
                      and request.path.startswith(p[:-1])]
            handler = prefix[0] if prefix else None
        if handler is None:
            response = Response(json.dumps({"error": f"no such endpoint {request.method} {request.path}"}),
                                status=404, mimetype="application/json")
        else:
            try:
                result = handler(request)
                response = result if isinstance(result, Response) else Response(
                    json.dumps(result, default=str), mimetype="application/json")
            except (ValueError, KeyError) as exc:
                response = Response(json.dumps({"error": str(exc)}), status=400, mimetype="application/json")
        return response(environ, start_response)

    def _health(self, _request: Request) -> dict:
        return {
            "status": "ok", "pid": os.getpid(), "port": self.port, "home": str(self.home),
            "cloud_id": self.cloud_id, "uptime_seconds": round(time.time() - self.started_at, 3),
            "services": {"rds": self.rds.summary(), "lambda": self.lambdas.summary(),
                         "ec2": self.ec2.summary(), "scheduler": self.scheduler.summary()},
        }

    def _blackhole(self, _request: Request) -> Response:
        time.sleep(120)
        return Response(status=504)

    def _shutdown_route(self, _request: Request) -> dict:
        self.stop_services()

        def stop_serving() -> None:
            time.sleep(0.2)  # let this answer reach the caller first
            self._server.shutdown()

        threading.Thread(target=stop_serving, daemon=True).start()
        return {"status": "stopping"}

    def _reset_route(self, _request: Request) -> dict:
        self.stop_services()
        moto_api_backend.reset()
        self.iam.install_admin(self.home)
        self.imds.after_reset()
        self._wipe_leftovers()
        self.rds.after_reset()
        self.scheduler.after_reset()
        return {"status": "reset"}

    def stop_services(self) -> None:
        """End every process the cloud runs: schedules first, then functions, instances, databases."""
        for service in (self.scheduler, self.lambdas, self.ec2, self.rds):
            try:
                service.stop_all()
            except Exception:  # keep stopping the others; the sweep by marker catches the rest
                log.exception("stopping %s failed", type(service).__name__)

    def serve_forever(self) -> None:
        self._server = make_server(HOST, self.port, self, threaded=True, request_handler=QuietRequestHandler)
        state = {"pid": os.getpid(), "port": self.port, "cloud_id": self.cloud_id, "started_at": self.started_at,
                 "token": self.control_token}
        tmp = self.home / "cloud.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.home / "cloud.json")
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=self._server.shutdown).start())
        log.info("local cloud listening on %s (home %s)", self.endpoint, self.home)
        try:
            self._server.serve_forever()
        finally:
            self.stop_services()
            log.info("local cloud stopped")


class QuietRequestHandler(MotoRequestHandler):
    """moto's request handler with keep-alive connections and without one log line per API call."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--cloud-id", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.umask(0o077)  # the lab's state (databases, secrets in records, logs) is its owner's only
    args.home.mkdir(parents=True, exist_ok=True)
    try:
        cloud = LocalCloud(args.home.resolve(), args.port, args.cloud_id)
        cloud.serve_forever()
    except OSError as exc:
        print(f"local cloud: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

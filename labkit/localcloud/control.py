"""Start, stop, inspect, reset, snapshot and restore the local cloud daemon from the outside (the `labkit cloud`
verbs)."""
from __future__ import annotations

import dataclasses
import http.client
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from labkit.errors import CloudError, StateUnreadable
from labkit.localcloud import checkpoints
from labkit.localcloud.credentials import credentials_path, read_admin_keys
from labkit.localcloud.procs import CLOUD_MARKER, end_leftovers, kill_marked, pid_alive, wait_gone

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 4566
HOST = "127.0.0.1"
# The daemon's own API (/_labkit/...) answers only callers that hold this lab's control token, which lives in
# the owner-only state file: another account on the machine cannot stop, reset or drive someone else's cloud.
TOKEN_HEADER = "X-Labkit-Token"
TOKEN_ENV = "LABKIT_CONTROL_TOKEN"
STATE_ERROR = 3  # the daemon's exit status when it refuses the lab's saved state (the message: state/ERROR)
SETTLE_SECONDS = 180.0  # a start waits this long at most for a restored lab's databases and instances
SENDS = 3  # a request the daemon closed unanswered is sent again, twice at most
# glibc's malloc in the daemon (the caller's environment overrides either). MALLOC_ARENA_MAX: glibc gives each of
# the daemon's many threads an arena of its own; two are plenty. MALLOC_MMAP_THRESHOLD_: a fixed threshold, so every
# block over 128 KiB (a deployment package, a model file's text, a pickled backend) is mapped on its own and given
# back when freed. By default glibc raises the threshold to the largest block freed (up to 32 MiB), and the next such
# blocks then come from the heap, where the small objects allocated between them keep the heap from shrinking: an idle
# lab's daemon held 136-166 MiB after the series this way (varying from run to run), 121 MiB with the fixed threshold.
DAEMON_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def default_home() -> Path:
    """``LABKIT_HOME`` or ``.labkit/`` in the project."""
    return Path(os.environ.get("LABKIT_HOME") or PROJECT_ROOT / ".labkit").resolve()


def default_port() -> int:
    """``LABKIT_CLOUD_PORT`` or 4566."""
    return int(os.environ.get("LABKIT_CLOUD_PORT") or DEFAULT_PORT)


@dataclass(frozen=True)
class CloudStatus:
    """What ``labkit cloud status`` reports."""

    running: bool
    home: Path
    port: int | None = None
    pid: int | None = None
    cloud_id: str | None = None
    started_at: float | None = None
    note: str | None = None

    @property
    def endpoint(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.running and self.port else None


def _state_file(home: Path) -> Path:
    return home / "cloud.json"


def _read_state(home: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(_state_file(home).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 5.0,
          token: str | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers[TOKEN_HEADER] = token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    # The daemon ends its connections when the lab's network changes (a restored lab's instances boot, a security
    # group changes) and runs no request it had not begun: such a request is sent again, as the SDKs do.
    sending = Retrying(retry=retry_if_exception_type((http.client.RemoteDisconnected, ConnectionResetError)),
                       stop=stop_after_attempt(SENDS), reraise=True)
    for attempt in sending:
        with attempt, urllib.request.urlopen(req, timeout=timeout) as resp:
            answer: dict[str, Any] = json.loads(resp.read() or b"{}")  # the daemon answers a JSON object
    return answer


def _healthy(port: int) -> dict[str, Any] | None:
    """The daemon's health answer; a stopped daemon refuses at once, so the timeout only waits out a busy one
    (0.6-1 s was measured with two labs' test suites on two cores)."""
    try:
        return _http("GET", f"http://{HOST}:{port}/_labkit/health", timeout=5.0)
    except (OSError, ValueError, http.client.HTTPException):
        return None


def cloud_status(home: Path | None = None) -> CloudStatus:
    """Report whether the daemon of ``home`` runs; a stale state file (dead pid) counts as stopped."""
    home = Path(home or default_home()).resolve()
    state = _read_state(home)
    if not state or not pid_alive(int(state.get("pid", 0))):
        return CloudStatus(running=False, home=home)
    health = _healthy(int(state["port"]))
    if not health or health.get("cloud_id") != state.get("cloud_id"):
        return CloudStatus(running=False, home=home, pid=int(state["pid"]), port=int(state["port"]))
    return CloudStatus(True, home, int(state["port"]), int(state["pid"]), state["cloud_id"], state.get("started_at"))


def unprivileged_port_start() -> int:
    """The lowest port a non-root process may bind (net.ipv4.ip_unprivileged_port_start; 1024 on stock Linux)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def start_cloud(port: int | None = None, home: Path | None = None, timeout: float = 30.0,
                extra_services: tuple[str, ...] = (), fresh: bool = False, realistic: bool | None = None,
                delays: dict[str, float] | None = None) -> CloudStatus:
    """Start the daemon unless it already runs; return once ``/_labkit/health`` answers and a restored lab is
    usable (its databases restarted, its instances booted).

    The lab's saved state (``home/state``) is loaded: a stop and a start (or a crash and a start) keep the lab.
    ``fresh`` moves the saved state aside (``state.old-<time>``) and starts an empty lab. ``extra_services`` names
    more service factories (``module:factory``) to register after the default ones, e.g. a test's probe.
    ``realistic`` starts it taking AWS's time (``delays`` changes the figures;
    :mod:`labkit.localcloud.core.timing`); None leaves it to ``LABKIT_REALISTIC``. A cloud that runs already is
    switched to ``realistic`` when it is given.

    Raises:
        CloudError: the port is taken by something else, or the daemon died while starting.
        StateUnreadable: the saved state was written by another labkit, or is damaged (the message says what to do).
    """
    home = Path(home or default_home()).resolve()
    status = cloud_status(home)
    if status.running:
        if port is not None and port != status.port:
            raise CloudError(
                f"the local cloud of {home} already runs on port {status.port}, not {port}",
                "stop it first with `labkit cloud stop`, or use its port",
            )
        if realistic is not None or delays:
            set_timing(realistic, delays, home)
        return status
    before = _read_state(home) or {}
    previous = before.get("cloud_id")
    if status.pid and pid_alive(status.pid):
        stop_cloud(home)  # a daemon that no longer answers: end it and what it started
    end_leftovers(previous, home)  # what a daemon that died (kill -9, a crash, a power cut) left running
    _state_file(home).unlink(missing_ok=True)
    if fresh and (home / "state").exists():
        (home / "state").rename(home / f"state.old-{time.strftime('%Y%m%d-%H%M%S')}")
    preferred = port is None  # the default (4566 or LABKIT_CLOUD_PORT) is a preference; --port N is an order
    for _attempt in range(3):
        note = None
        if preferred or port is None:  # (port is None only when preferred)
            port, note = _pick_port(default_port())
        if not _port_free(port) and not (port == before.get("port") and _port_released(port)):
            raise _port_taken(port)
        started = _launch(home, port, timeout, extra_services, _timing_env(realistic, delays))
        if started:
            _wait_settled(home)
            return dataclasses.replace(started, note=note)
        if not preferred:
            raise _port_taken(port)
    raise CloudError(f"other processes kept taking the free ports picked for the local cloud (last {port})",
                     "try again, or pick a port with `labkit cloud start --port N`")


def _port_released(port: int, seconds: float = 5.0) -> bool:
    """Whether the port of this home's previous daemon comes free within ``seconds``: a daemon just killed still
    holds its socket while its threads end (its leader already shows as a zombie meanwhile)."""
    try:
        Retrying(retry=retry_if_result(lambda free: not free), stop=stop_after_delay(seconds),
                 wait=wait_fixed(0.05))(_port_free, port)
    except RetryError:
        return False
    return True


def _port_taken(port: int) -> CloudError:
    return CloudError(
        f"port {port} on {HOST} is already in use{_holder(port)}, so the local cloud cannot listen there",
        f"stop what uses port {port} (see `ss -ltnp 'sport = :{port}'`) or pick another port with "
        "`labkit cloud start --port N`, or leave the port out: labkit then picks a free one",
    )


class _PortRace(Exception):
    """Another process took the port between the look and the daemon's bind."""


def _timing_env(realistic: bool | None, delays: dict[str, float] | None) -> dict[str, str]:
    env = {} if realistic is None else {"LABKIT_REALISTIC": "1" if realistic else "0"}
    if delays:
        env["LABKIT_DELAYS"] = ",".join(f"{name}={seconds:g}" for name, seconds in delays.items())
    return env


def _launch(home: Path, port: int, timeout: float, extra_services: tuple[str, ...],
            extra_env: dict[str, str] | None = None) -> CloudStatus | None:
    """Start the daemon on ``port``; None when something else took the port while it started (a race)."""
    _private_folder(home)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    cloud_id = uuid.uuid4().hex
    env = {**DAEMON_MALLOC, **os.environ, CLOUD_MARKER: cloud_id, "PYTHONUNBUFFERED": "1",
           "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", TOKEN_ENV: secrets.token_urlsafe(32), **(extra_env or {})}
    log_path = home / "logs" / "cloud.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkit.localcloud.server", "--port", str(port), "--home", str(home),
             "--cloud-id", cloud_id, *(arg for spec in extra_services for arg in ("--service", spec))],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, cwd=str(PROJECT_ROOT),
        )

    def answered() -> bool:
        if proc.poll() is not None:
            if proc.returncode == STATE_ERROR and (home / "state" / "ERROR").exists():
                raise _state_unreadable(home)
            if not _port_free(port):
                raise _PortRace(port)
            raise CloudError(
                f"the local cloud exited while starting (code {proc.returncode}):\n{_tail(log_path)}",
                f"read {log_path} for the whole log",
            )
        health = _healthy(port)
        return bool(health and health.get("cloud_id") == cloud_id)

    try:
        Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(timeout), wait=wait_fixed(0.05))(
            answered)
        return cloud_status(home)
    except _PortRace:
        return None
    except RetryError:
        pass
    proc.kill()
    kill_marked(CLOUD_MARKER, cloud_id)
    raise CloudError(f"the local cloud did not become healthy within {timeout:.0f} s", f"read {log_path}")


def _state_unreadable(home: Path) -> StateUnreadable:
    message = (home / "state" / "ERROR").read_text(errors="replace").strip()
    what, _, how = message.partition("\n")
    return StateUnreadable(f"the local cloud did not start: {what}", how.strip() or None)


def _wait_settled(home: Path, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until a restored lab is usable: what the daemon says is still settling (a database restarting, an
    instance booting) is done, or ``timeout`` passed (the lab then finishes on its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not cloud_state(home).get("settling"):
                return
        except CloudError:
            return
        time.sleep(0.1)


def _private_folder(home: Path) -> None:
    """Create the state folder readable by its owner only: databases, logs and keys live there."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if home.stat().st_uid == os.geteuid():
        home.chmod(0o700)


def _pick_port(preferred: int) -> tuple[int, str | None]:
    """``preferred`` when free; otherwise a free port, and a note saying why and how this clone finds it."""
    if _port_free(preferred):
        return preferred, None
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return port, (f"port {preferred} is taken{_holder(preferred)}, so this lab's local cloud listens on "
                  f"{HOST}:{port} instead. Every labkit command run from this folder finds it (its address is "
                  "kept in the lab's state folder); to choose the port yourself, stop it and use "
                  "`labkit cloud start --port N`.")


def _holder(port: int) -> str:
    """Who holds ``port``, when it is another lab's local cloud (it says so on /_labkit/health)."""
    health = _healthy(port)
    if not health:
        return ""
    return f" by another lab's local cloud (state folder {health.get('home', '?')})"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_cloud(home: Path | None = None, timeout: float = 20.0) -> bool:
    """Stop the daemon and every process it started. Returns False when nothing was running."""
    home = Path(home or default_home()).resolve()
    state = _read_state(home)
    if not state:
        return False
    pid, port, cloud_id = int(state.get("pid", 0)), int(state.get("port", 0)), state.get("cloud_id", "")
    was_running = pid_alive(pid)
    if was_running:
        try:
            _http("POST", f"http://{HOST}:{port}/_labkit/shutdown", {}, timeout=timeout, token=state.get("token"))
        except (OSError, ValueError, http.client.HTTPException):
            pass  # a daemon that is already going away may not finish its answer
        wait_gone(pid, timeout)
    if cloud_id:
        kill_marked(CLOUD_MARKER, cloud_id)
    _state_file(home).unlink(missing_ok=True)
    return was_running


def reset_cloud(home: Path | None = None) -> dict[str, Any]:
    """Empty the lab (records, databases, functions, instances, schedules, its saved state); a running cloud keeps
    running, a stopped one starts empty next time. The admin keys and the checkpoints stay."""
    home = Path(home or default_home()).resolve()
    if not cloud_status(home).running:
        shutil.rmtree(home / "state", ignore_errors=True)  # the next start finds no lab and empties every folder
        return {"status": "reset", "running": False}
    return {**cloud_request("POST", "/_labkit/reset", {}, home=home, timeout=60), "running": True}


def snapshot_cloud(name: str, home: Path | None = None) -> dict[str, Any]:
    """Save the whole lab as one checkpoint file (``labkit cloud snapshot NAME``): its records, databases (as SQL),
    instance disks and event history, as of one instant. A stopped cloud is started for it and stopped again.
    Returns the file's ``path``, ``bytes``, ``seconds`` and the manifest."""
    home = Path(home or default_home()).resolve()
    target = checkpoints.destination(name, home)
    was_running = cloud_status(home).running
    if not was_running:
        start_cloud(home=home)
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=home))
    try:
        manifest = cloud_request("POST", "/_labkit/state/checkpoint", {"staging": str(staging)}, home=home)
        made = time.monotonic()
        size = checkpoints.pack(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not was_running:
            stop_cloud(home)
    return {"path": str(target), "bytes": size, "seconds": round(time.monotonic() - started, 2),
            "pack_seconds": round(time.monotonic() - made, 2), "manifest": manifest}


def restore_cloud(name: str, home: Path | None = None, port: int | None = None) -> CloudStatus:
    """Bring back the lab of the checkpoint ``name`` (``labkit cloud restore NAME``; a name in the lab's
    ``checkpoints/`` or ``LABKIT_CHECKPOINTS``, or a path), in place of this lab, with this lab's own addresses and
    keys; the cloud is (re)started and returns usable.

    Raises:
        CheckpointError: no such checkpoint, or one this labkit cannot load (the lab is left as it was).
    """
    home = Path(home or default_home()).resolve()
    source = checkpoints.locate(name, home)
    checkpoints.check_versions(checkpoints.manifest(source), source, importlib.metadata.version("moto"))
    status = cloud_status(home)
    if status.running:
        port = port or status.port
        stop_cloud(home)
    _private_folder(home)
    checkpoints.unpack(source, home)
    return start_cloud(port=port, home=home, timeout=120)


def _require_running(home: Path | None) -> CloudStatus:
    status = cloud_status(home)
    if not status.running:
        raise CloudError("the local cloud is not running", "start it with `labkit cloud start`")
    return status


def cloud_request(method: str, path: str, body: dict[str, Any] | None = None, home: Path | None = None,
                  timeout: float = 600) -> dict[str, Any]:
    """Call one of the daemon's own ``/_labkit/...`` endpoints."""
    status = _require_running(home)
    token = (_read_state(status.home) or {}).get("token")
    try:
        return _http(method, f"{status.endpoint}{path}", body, timeout=timeout, token=token)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise CloudError(f"the local cloud refused {method} {path}: {exc.code} {detail}") from exc


def admin_credentials(home: Path | None = None) -> dict[str, str]:
    """The keys of the local cloud's IAM user ``lab-admin`` (boto3 keyword names); they never leave memory.

    Raises:
        CloudError: the cloud of ``home`` never started, so it has no admin user yet.
    """
    home = Path(home or default_home()).resolve()
    keys = read_admin_keys(home)
    if keys is None:
        raise CloudError(f"no local cloud credentials in {credentials_path(home)}", "start it with `labkit cloud start`")
    return {"aws_access_key_id": keys.access_key_id, "aws_secret_access_key": keys.secret_access_key}


# -- the daemon's own API, one function per route ------------------------------------------------------
def cloud_health(home: Path | None = None) -> dict[str, Any]:
    """What ``/_labkit/health`` says: pid, port, home and each service's summary."""
    return cloud_request("GET", "/_labkit/health", home=home)


def cloud_state(home: Path | None = None, audit: bool = False) -> dict[str, Any]:
    """What the lab's saved state holds and costs (``/_labkit/state``): saves, bytes, milliseconds, what is still
    settling after a start; ``audit`` adds the objects of another service a save would copy (there should be none)."""
    return cloud_request("GET", "/_labkit/state" + ("?audit=1" if audit else ""), home=home, timeout=120)


def remapped_ports(home: Path | None = None) -> dict[str, str]:
    """Public ``ip:port`` -> the ``ip:port`` where your computer reaches it, for each port of an instance's public
    IP that another program on this computer holds (the local cloud opened it on a free port instead)."""
    return cloud_request("GET", "/_labkit/network/remapped", home=home, timeout=30)


def lab_clock(home: Path | None = None) -> dict[str, Any]:
    """The lab clock: ``now`` (ISO 8601) and ``offset_seconds`` ahead of real time."""
    return cloud_request("GET", "/_labkit/clock", home=home)


def cloud_timing(home: Path | None = None) -> dict[str, Any]:
    """Whether the cloud takes AWS's time (``realistic``) and its ``delays`` in seconds."""
    return cloud_request("GET", "/_labkit/timing", home=home)


def set_timing(realistic: bool | None = None, delays: dict[str, float] | None = None,
               home: Path | None = None) -> dict[str, Any]:
    """Turn realistic mode on or off (None: as it is) and change delays; the answer is the new setting."""
    body: dict[str, Any] = {"delays": delays or {}}
    if realistic is not None:
        body["realistic"] = realistic
    return cloud_request("POST", "/_labkit/timing", body, home=home)


def advance_clock(seconds: float, home: Path | None = None) -> dict[str, Any]:
    """Move the lab clock forward; the answer holds the new ``now`` and the ``firings`` of every due rule and
    EventBridge Scheduler schedule (a schedule's firing names ``schedule``/``group``/``schedule_arn``)."""
    return cloud_request("POST", "/_labkit/clock/advance", {"seconds": seconds}, home=home)


def schedule_history(home: Path | None = None) -> list[dict[str, Any]]:
    """The scheduler's latest firings, oldest first."""
    firings: list[dict[str, Any]] = cloud_request("GET", "/_labkit/schedule/history", home=home)["firings"]
    return firings


def scheduler_history(home: Path | None = None) -> list[dict[str, Any]]:
    """EventBridge Scheduler's latest firings (each attempt of each schedule), oldest first."""
    firings: list[dict[str, Any]] = cloud_request("GET", "/_labkit/scheduler/history", home=home)["firings"]
    return firings


def user_data_log(instance_id: str, home: Path | None = None) -> str | None:
    """The instance's ``cloud-init-output.log`` (its user data's output), or None when it has none."""
    log: str | None = cloud_request("GET", f"/_labkit/ec2/{instance_id}/user-data-log", home=home)["log"]
    return log


def checkip_url(home: Path | None = None) -> str:
    """Where the running cloud answers a caller's address (open, as https://checkip.amazonaws.com on AWS)."""
    return f"{_require_running(home).endpoint}/_labkit/checkip"


def cloud_env(home: Path | None = None, region: str = "us-east-1") -> dict[str, str]:
    """The environment a process needs to talk to the running local cloud as its admin user
    (as `labkit cloud env` prints it for ``eval``)."""
    status = _require_running(home)
    keys = admin_credentials(status.home)
    return {
        "AWS_ENDPOINT_URL": status.endpoint or "",
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }

"""A small ``systemctl``/``journalctl`` for local-cloud EC2 sandboxes, with systemd's restart rules.

The local "Ubuntu image" has no systemd, so this stands in for the part a deployment uses:
``daemon-reload``, ``enable [--now] UNIT|PATH``, ``disable``, ``start``, ``stop``, ``restart``,
``reset-failed``, ``is-active``, ``is-enabled``, ``status``, ``show [-p PROP]`` and ``journalctl -u UNIT [-n N]``.
Units live in ``$LABKIT_SANDBOX/etc/systemd/system``; enabled units are started again by StartInstances.

Each started unit gets a supervisor process (this file, ``--supervise UNIT``), as systemd is the supervisor
of every service: it runs ExecStart in a process group of its own, and when the main process exits it ends
what is left of the group (KillMode=control-group), records the exit, and restarts as ``Restart=``
(no, always, on-success, on-failure, on-abnormal, on-abort) says, after ``RestartSec=`` (default 100ms),
unless more than ``StartLimitBurst=`` starts (default 5) fell within ``StartLimitIntervalSec=`` (default
10s): then the unit fails with result ``start-limit-hit``, as systemd's does. The supervisor carries the
instance's environment marker like every process of the instance, so StopInstances and TerminateInstances
end it with the rest; it also never restarts once ``run/systemd/shutdown`` exists (the cloud writes it first).
``[Service]`` keys read: ExecStart, WorkingDirectory, Environment, EnvironmentFile, Restart, RestartSec,
SuccessExitStatus, StartLimitIntervalSec/StartLimitBurst (also in ``[Unit]``), User/Group/DynamicUser.

``User=`` (with ``Group=``, ``DynamicUser=``) is not applied: every process of the local image runs as the local
cloud's own user. Switching users needs root, and even as root the shim does not: the image's users (a
DynamicUser= one, or one made with useradd on the instance) are not this machine's, and the unit's files belong
to the cloud's user. Each start says so in the unit's journal, so the difference from EC2 is visible.
"""
from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

SANDBOX = Path(os.environ.get("LABKIT_SANDBOX", "/"))
UNITS = SANDBOX / "etc" / "systemd" / "system"
WANTS = UNITS / "multi-user.target.wants"
RUN = SANDBOX / "run" / "systemd"
SHUTDOWN = RUN / "shutdown"
LOGS = SANDBOX / "var" / "log" / "journal"
CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}
RESTART_WHEN = {  # systemd.service(5), "Exit causes and the effect of the Restart= settings"
    "no": set(), "always": {"success", "exit-code", "signal"}, "on-success": {"success"},
    "on-failure": {"exit-code", "signal"}, "on-abnormal": {"signal"}, "on-abort": {"signal"},
    "on-watchdog": set()}
SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?)?\s*")
UNIT_SECONDS = {"ms": 0.001, "msec": 0.001, "m": 60, "min": 60, "minute": 60, "minutes": 60,
                "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}


def unit_name(arg: str) -> str:
    name = Path(arg).name
    return name if name.endswith(".service") else f"{name}.service"


class UnitFile(configparser.ConfigParser):
    """A unit file's sections; keys keep their case (``ExecStart``), as systemd reads them."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def read_unit(name: str) -> configparser.ConfigParser:
    parser = UnitFile(strict=False, interpolation=None, delimiters=("=",))
    path = UNITS / name
    if not path.exists():
        sys.exit(f"Failed to start {name}: Unit {name} not found.")
    parser.read(path)
    return parser


def timespan(text: str, default: float) -> float:
    """systemd's time spans: ``100ms``, ``2``, ``2s``, ``1min 30s``; ``infinity`` is no limit (0)."""
    text = (text or "").strip()
    if not text:
        return default
    if text == "infinity":
        return 0.0
    total, pos = 0.0, 0
    for match in SPAN.finditer(text):
        if match.start() != pos:
            return default
        total += float(match.group(1)) * UNIT_SECONDS.get(match.group(2) or "s", 1)
        pos = match.end()
    return total if pos == len(text) else default


def service_env(service: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for line in service.get("EnvironmentFile", "").splitlines():
        path = Path(line.strip().lstrip("-"))
        if path.is_file():
            for raw in path.read_text().splitlines():
                key, sep, value = raw.strip().partition("=")
                if sep and not key.startswith("#"):
                    env[key.strip()] = value.strip().strip('"')
    for line in service.get("Environment", "").splitlines():
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    return env


# -- state shared by the supervisor and the systemctl verbs ----------------------------------------------
def _state_path(name: str) -> Path:
    return RUN / f"{name}.json"


def load_state(name: str) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(_state_path(name).read_text())
        return state
    except (OSError, ValueError):
        return {}


def save_state(name: str, state: dict[str, Any]) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(name).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(_state_path(name))


def alive(pid: int | None) -> TypeGuard[int]:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def pid_of(name: str) -> int | None:
    """The unit's main process, if it runs."""
    pid = load_state(name).get("main_pid")
    return pid if alive(pid) else None


def journal(name: str, message: str) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%b %d %H:%M:%S")
    with open(LOGS / f"{name}.log", "a") as log:
        log.write(f"{stamp} localhost systemd[1]: {message}\n")


# -- the supervisor -----------------------------------------------------------------------------------------
class Supervisor:
    """Runs one unit's ExecStart and applies Restart=, RestartSec= and the start rate limit."""

    def __init__(self, name: str) -> None:
        self.name = name
        unit = read_unit(name)
        self.service = unit["Service"] if unit.has_section("Service") else {}
        section = unit["Unit"] if unit.has_section("Unit") else {}
        self.description = section.get("Description", name)
        self.restart = self.service.get("Restart", "no").strip()
        self.restart_sec = timespan(self.service.get("RestartSec", ""), 0.1)
        self.interval = timespan(section.get("StartLimitIntervalSec") or self.service.get("StartLimitIntervalSec", ""),
                                 10.0)
        self.burst = int(section.get("StartLimitBurst") or self.service.get("StartLimitBurst") or 5)
        self.success_codes = {0} | {int(c) for c in self.service.get("SuccessExitStatus", "").split() if c.isdigit()}
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def on_stop_signal(self, *_: object) -> None:
        self.stopping = True
        if self.child and self.child.poll() is None:
            _signal_group(self.child.pid, signal.SIGTERM)

    def user_note(self) -> str:
        """What the journal says about ``User=``: on EC2 systemd starts the unit as that user, here it cannot."""
        user = (self.service.get("User") or "").strip()
        if not user:
            return ""
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name if os.getuid() != 0 else "root"
        return (f"{self.name}: User={user} is not applied: the local image runs every process as the local cloud's "
                f"user ({me}, uid {os.getuid()}); on EC2 systemd starts the unit as {user}.")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_stop_signal)
        signal.signal(signal.SIGINT, self.on_stop_signal)
        if self.user_note():
            journal(self.name, self.user_note())
        state = load_state(self.name)
        state.update(supervisor_pid=os.getpid(), restarts=0)  # NRestarts counts since the last explicit start
        while True:
            now = time.time()
            starts = [t for t in state.get("starts", []) if self.interval <= 0 or now - t < self.interval]
            if self.interval > 0 and self.burst > 0 and len(starts) >= self.burst:
                journal(self.name, f"{self.name}: Start request repeated too quickly.")
                journal(self.name, f"{self.name}: Failed with result 'start-limit-hit'.")
                journal(self.name, f"Failed to start {self.description}.")
                state.update(active="failed", sub="failed", result="start-limit-hit", main_pid=None, since=now,
                             starts=starts)
                save_state(self.name, state)
                return 1
            state["starts"] = starts + [now]
            self.child = self._spawn()
            state.update(active="active", sub="running", main_pid=self.child.pid, since=time.time(), result="success")
            save_state(self.name, state)
            journal(self.name, f"Started {self.description}.")
            code = self.child.wait()
            _end_group(self.child.pid)
            result, code_text = self._result(code)
            state["last_exit"] = {"pid": self.child.pid, "code": code_text, "at": time.time()}
            journal(self.name, f"{self.name}: Main process exited, {code_text}")
            if self.stopping or SHUTDOWN.exists():
                journal(self.name, f"{self.name}: Deactivated successfully.")
                journal(self.name, f"Stopped {self.description}.")
                state.update(active="inactive", sub="dead", main_pid=None, since=time.time(), result="success",
                             supervisor_pid=None)
                save_state(self.name, state)
                return 0
            if result != "success":
                journal(self.name, f"{self.name}: Failed with result '{result}'.")
            if result not in RESTART_WHEN.get(self.restart, set()):
                state.update(active="failed" if result != "success" else "inactive",
                             sub="failed" if result != "success" else "dead", main_pid=None, since=time.time(),
                             result=result, supervisor_pid=None)
                save_state(self.name, state)
                return 0
            state.update(active="activating", sub="auto-restart", main_pid=None, since=time.time(), result=result)
            save_state(self.name, state)
            deadline = time.monotonic() + self.restart_sec
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(min(0.05, self.restart_sec))
            if self.stopping or SHUTDOWN.exists():
                state.update(active="inactive", sub="dead", supervisor_pid=None)
                save_state(self.name, state)
                return 0
            state["restarts"] = state.get("restarts", 0) + 1
            journal(self.name, f"{self.name}: Scheduled restart job, restart counter is at {state['restarts']}.")
            journal(self.name, f"Stopped {self.description}.")

    def _spawn(self) -> subprocess.Popen[bytes]:
        exec_start = self.service["ExecStart"].lstrip("-@+!").replace("$$", "$")  # systemd's $$ escape
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(LOGS / f"{self.name}.log", "ab") as log:
            return subprocess.Popen(shlex.split(exec_start), cwd=self.service.get("WorkingDirectory") or str(SANDBOX),
                                    env=service_env(self.service), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _result(self, code: int) -> tuple[str, str]:
        if code < 0:
            sig = signal.Signals(-code)
            text = f"code=killed, status={-code}/{sig.name[3:]}"
            return ("success" if sig in CLEAN_SIGNALS else "signal"), text
        text = f"code=exited, status={code}/{'SUCCESS' if code == 0 else 'FAILURE'}"
        return ("success" if code in self.success_codes else "exit-code"), text


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _end_group(pgid: int, grace: float = 5.0) -> None:
    """What systemd does when the main process exits: SIGTERM the rest of the unit, SIGKILL it after a grace."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)


# -- the systemctl verbs --------------------------------------------------------------------------------------
def start(name: str) -> None:
    """Start the unit's supervisor (Type=simple: started once forked), unless the start rate limit forbids it."""
    state = load_state(name)
    if alive(state.get("supervisor_pid")):
        return
    unit = read_unit(name)
    if state.get("result") == "start-limit-hit":
        interval = timespan(unit.get("Unit", "StartLimitIntervalSec", fallback="")
                            or unit.get("Service", "StartLimitIntervalSec", fallback=""), 10.0)
        burst = int(unit.get("Unit", "StartLimitBurst", fallback="") or unit.get("Service", "StartLimitBurst",
                                                                              fallback="") or 5)
        recent = [t for t in state.get("starts", []) if time.time() - t < interval]
        if interval > 0 and len(recent) >= burst:
            sys.exit(f"Job for {name} failed because start of the service was attempted too often.\n"
                     f"See \"systemctl status {name}\" and \"journalctl -u {name}\" for details.\n"
                     f"To force a start use \"systemctl reset-failed {name}\" followed by \"systemctl start {name}\" "
                     "again.")
    SHUTDOWN.unlink(missing_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as log:
        supervisor = subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), "--supervise", name],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and supervisor.poll() is None:
        if load_state(name).get("supervisor_pid") == supervisor.pid and load_state(name).get("starts"):
            break
        time.sleep(0.02)


def stop(name: str) -> None:
    state = load_state(name)
    supervisor = state.get("supervisor_pid")
    if alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(supervisor):
            os.kill(supervisor, signal.SIGKILL)
    main = state.get("main_pid")
    if main:
        _end_group(main)
    state = load_state(name)
    state.update(active="inactive", sub="dead", main_pid=None, supervisor_pid=None)
    if state.get("since"):
        save_state(name, state)


def reset_failed(name: str) -> None:
    state = load_state(name)
    state.update(starts=[], result="success", restarts=0)
    if state.get("active") == "failed":
        state.update(active="inactive", sub="dead")
    save_state(name, state)


def enable(arg: str) -> str:
    name = unit_name(arg)
    source = Path(arg)
    UNITS.mkdir(parents=True, exist_ok=True)
    if source.is_absolute() and source.exists() and source.resolve() != (UNITS / name).resolve():
        (UNITS / name).write_text(source.read_text())
    WANTS.mkdir(parents=True, exist_ok=True)
    (WANTS / name).write_text(name)
    print(f"Created symlink /etc/systemd/system/multi-user.target.wants/{name} → /etc/systemd/system/{name}.")
    return name


def active_state(name: str) -> str:
    state = load_state(name)
    if state.get("active") == "active" and not pid_of(name):
        return "inactive"  # the supervisor itself was killed with the process (the instance stopped)
    if state.get("active") == "activating" and not alive(state.get("supervisor_pid")):
        return "inactive"
    active: str = state.get("active", "inactive")
    return active


def status(name: str) -> int:
    state, unit = load_state(name), read_unit(name)
    description = unit["Unit"].get("Description", name) if unit.has_section("Unit") else name
    enabled = "enabled" if (WANTS / name).exists() else "disabled"
    active = active_state(name)
    since = dt.datetime.fromtimestamp(state["since"]).strftime("%a %Y-%m-%d %H:%M:%S UTC") if state.get("since") else ""
    ago = f"; {int(time.time() - state['since'])}s ago" if state.get("since") else ""
    if active == "active":
        line = f"active (running) since {since}{ago}"
    elif active == "activating":
        line = f"activating (auto-restart) (Result: {state.get('result')}) since {since}{ago}"
    elif active == "failed":
        line = f"failed (Result: {state.get('result')}) since {since}{ago}"
    else:
        line = "inactive (dead)" + (f" since {since}{ago}" if since else "")
    print(f"● {name} - {description}\n     Loaded: loaded (/etc/systemd/system/{name}; {enabled}; vendor preset: enabled)"
          f"\n     Active: {line}")
    last = state.get("last_exit")
    if last:
        exec_start = unit["Service"].get("ExecStart", "")
        print(f"    Process: {last['pid']} ExecStart={exec_start} ({last['code']})")
    if active == "active":
        print(f"   Main PID: {state['main_pid']}")
    path = LOGS / f"{name}.log"
    tail = path.read_text(errors="replace").splitlines()[-10:] if path.exists() else []
    if tail:
        print("\n" + "\n".join(tail))
    return 0 if active == "active" else 3


def show(name: str, props: list[str]) -> int:
    state = load_state(name)
    values = {"ActiveState": active_state(name), "SubState": state.get("sub", "dead"),
              "Result": state.get("result", "success"), "MainPID": pid_of(name) or 0,
              "NRestarts": state.get("restarts", 0),
              "ExecMainStatus": (state.get("last_exit") or {}).get("code", "")}
    for key in props or list(values):
        print(f"{key}={values.get(key, '')}")
    return 0


def systemctl(args: list[str]) -> int:
    now = "--now" in args
    props = [p for i, a in enumerate(args) if a in ("-p", "--property") and i + 1 < len(args)
             for p in args[i + 1].split(",")]
    args = [a for i, a in enumerate(args) if not a.startswith("-") and not (i and args[i - 1] in ("-p", "--property"))]
    if not args:
        sys.exit("systemctl: a command is needed")
    verb, units = args[0], args[1:]
    if verb == "daemon-reload":
        return 0
    if verb == "start-enabled":  # what the local cloud runs at StartInstances (systemd does this at boot)
        units = sorted(p.name for p in WANTS.glob("*.service")) if WANTS.exists() else []
        verb = "start"
    for arg in units:
        name = unit_name(arg)
        if verb == "enable":
            name = enable(arg)
            if now:
                start(name)
        elif verb == "disable":
            (WANTS / name).unlink(missing_ok=True)
            if now:
                stop(name)
        elif verb == "start":
            start(name)
        elif verb == "stop":
            stop(name)
        elif verb == "restart":
            stop(name)
            start(name)
        elif verb == "reset-failed":
            reset_failed(name)
        elif verb == "is-active":
            state = active_state(name)
            print(state)
            return 0 if state == "active" else 3
        elif verb == "is-enabled":
            enabled = (WANTS / name).exists()
            print("enabled" if enabled else "disabled")
            return 0 if enabled else 1
        elif verb == "status":
            return status(name)
        elif verb == "show":
            return show(name, props)
        else:
            sys.exit(f"systemctl: unknown command {verb!r} (the local sandbox knows: daemon-reload, enable, disable, "
                     "start, stop, restart, reset-failed, is-active, is-enabled, status, show)")
    return 0


def journalctl(args: list[str]) -> int:
    unit, lines = None, 50
    for i, arg in enumerate(args):
        if arg == "-u" and i + 1 < len(args):
            unit = unit_name(args[i + 1])
        if arg == "-n" and i + 1 < len(args):
            lines = int(args[i + 1])
    if not unit:
        sys.exit("journalctl: this sandbox keeps logs per unit; use journalctl -u UNIT")
    path = LOGS / f"{unit}.log"
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    print("\n".join(text[-lines:]))
    return 0


if __name__ == "__main__":
    # The sandbox's bin/systemctl and bin/journalctl call this file with --as-<tool> first.
    tool, *rest = sys.argv[1:] or ["--as-systemctl"]
    if tool == "--supervise":
        sys.exit(Supervisor(rest[0]).run())
    sys.exit(journalctl(rest) if tool == "--as-journalctl" else systemctl(rest))

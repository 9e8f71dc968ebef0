"""A small ``systemctl``/``journalctl`` for local-cloud EC2 sandboxes.

The local "Ubuntu image" has no systemd, so this stands in for the part a deployment uses:
``daemon-reload``, ``enable [--now] UNIT|PATH``, ``disable``, ``start``, ``stop``, ``restart``,
``is-active``, ``is-enabled``, ``status``, and ``journalctl -u UNIT [-n N]``. Units live in
``$LABKIT_SANDBOX/etc/systemd/system``; enabled units are started again by StartInstances.
Only ``[Service]`` keys ExecStart, WorkingDirectory, Environment and EnvironmentFile are read.
"""
from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

SANDBOX = Path(os.environ.get("LABKIT_SANDBOX", "/"))
UNITS = SANDBOX / "etc" / "systemd" / "system"
WANTS = UNITS / "multi-user.target.wants"
RUN = SANDBOX / "run" / "systemd"
LOGS = SANDBOX / "var" / "log" / "journal"


def unit_name(arg: str) -> str:
    name = Path(arg).name
    return name if name.endswith(".service") else f"{name}.service"


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    path = UNITS / name
    if not path.exists():
        sys.exit(f"Failed to start {name}: Unit {name} not found.")
    parser.read(path)
    return parser


def pid_of(name: str) -> int | None:
    try:
        pid = int((RUN / f"{name}.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return None if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"] else pid


def service_env(service: configparser.SectionProxy) -> dict[str, str]:
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


def start(name: str) -> None:
    if pid_of(name):
        return
    service = read_unit(name)["Service"]
    command = shlex.split(service["ExecStart"].lstrip("-@+!").replace("$$", "$"))  # systemd's $$ escape
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(command, cwd=service.get("WorkingDirectory") or str(SANDBOX), env=service_env(service),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (RUN / f"{name}.pid").write_text(str(proc.pid))
    time.sleep(0.3)
    if proc.poll() is not None:
        sys.exit(f"Job for {name} failed because the control process exited with error code {proc.returncode}.\n"
                 f"See \"journalctl -u {name}\" for details.")


def stop(name: str) -> None:
    pid = pid_of(name)
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not pid_of(name):
                break
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
    (RUN / f"{name}.pid").unlink(missing_ok=True)


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


def systemctl(args: list[str]) -> int:
    now = "--now" in args
    args = [a for a in args if not a.startswith("-")]
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
        elif verb == "is-active":
            print("active" if pid_of(name) else "inactive")
            return 0 if pid_of(name) else 3
        elif verb == "is-enabled":
            enabled = (WANTS / name).exists()
            print("enabled" if enabled else "disabled")
            return 0 if enabled else 1
        elif verb == "status":
            pid = pid_of(name)
            print(f"● {name}\n     Active: {'active (running)' if pid else 'inactive (dead)'}" +
                  (f"\n   Main PID: {pid}" if pid else ""))
            return 0 if pid else 3
        else:
            sys.exit(f"systemctl: unknown command {verb!r} (the local sandbox knows: daemon-reload, enable, disable, "
                     "start, stop, restart, is-active, is-enabled, status)")
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
    sys.exit(journalctl(rest) if tool == "--as-journalctl" else systemctl(rest))

"""The ``labkit`` command: ``cloud`` (the local cloud), ``up``/``check``/``status``/``down`` (the lab), ``run``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labkit.errors import LabkitError
from labkit.localcloud import control


def _cloud(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else None
    if args.verb == "start":
        status = control.start_cloud(port=args.port, home=home)
        print(f"local cloud running at {status.endpoint} (pid {status.pid}, home {status.home})")
        print("use it from a shell with:  eval \"$(labkit cloud env)\"")
    elif args.verb == "stop":
        print("local cloud stopped" if control.stop_cloud(home) else "local cloud was not running")
    elif args.verb == "status":
        status = control.cloud_status(home)
        if not status.running:
            print(f"local cloud: stopped (home {status.home})")
            return 3
        health = control.cloud_request("GET", "/_labkit/health", home=home)
        print(f"local cloud: running at {status.endpoint} (pid {status.pid}, home {status.home})")
        print(json.dumps(health["services"], indent=2, default=str))
    elif args.verb == "reset":
        control.reset_cloud(home)
        print("local cloud state emptied (records, databases, functions, instances, schedules)")
    elif args.verb == "env":
        for key, value in control.cloud_env(home).items():
            print(f"export {key}={value}")
    elif args.verb == "clock":
        return _clock(args, home)
    elif args.verb == "logs":
        return _instance_log(args, home)
    return 0


def _clock(args: argparse.Namespace, home: Path | None) -> int:
    seconds = (args.seconds or 0) + (args.minutes or 0) * 60 + (args.hours or 0) * 3600 + (args.days or 0) * 86400
    action = args.args[0] if args.args else None
    if action not in (None, "advance"):
        raise LabkitError(f"unknown clock action {action!r}", "use `labkit cloud clock` or `labkit cloud clock advance`")
    if action == "advance":
        if seconds <= 0:
            raise LabkitError("say how far to move the clock", "e.g. `labkit cloud clock advance --hours 24`")
        result = control.cloud_request("POST", "/_labkit/clock/advance", {"seconds": seconds}, home=home)
        print(f"lab time is now {result['now']}")
        for firing in result["firings"]:
            print(f"  {firing['time']}  {firing['rule']} -> {firing['target']}: {firing['status']}"
                  + (f" ({firing['error']})" if firing.get("error") else ""))
        if not result["firings"]:
            print("  no scheduled rule was due")
    else:
        info = control.cloud_request("GET", "/_labkit/clock", home=home)
        print(f"lab time {info['now']} (real time + {info['offset_seconds']:.0f} s)")
    return 0


def _instance_log(args: argparse.Namespace, home: Path | None) -> int:
    status = control.cloud_status(home)
    if not args.args:
        raise LabkitError("name the instance", "e.g. `labkit cloud logs i-0123456789abcdef0`")
    path = status.home / "ec2" / args.args[0] / "var" / "log" / "cloud-init-output.log"
    if not path.exists():
        raise LabkitError(f"no user-data log for {args.args[0]}", "check the instance id with `labkit status`")
    print(path.read_text(errors="replace"), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="Orders Lab: the AWS order system, step by step.")
    sub = parser.add_subparsers(dest="command", required=True)

    cloud = sub.add_parser("cloud", help="the embedded local cloud on 127.0.0.1")
    cloud.add_argument("verb", choices=["start", "stop", "status", "reset", "env", "clock", "logs"])
    cloud.add_argument("args", nargs="*", help="clock: [advance]; logs: INSTANCE_ID")
    cloud.add_argument("--port", type=int, default=None, help="port (default 4566 or LABKIT_CLOUD_PORT)")
    cloud.add_argument("--home", default=None, help="state folder (default .labkit or LABKIT_HOME)")
    for unit in ("seconds", "minutes", "hours", "days"):
        cloud.add_argument(f"--{unit}", type=float, default=None)
    cloud.set_defaults(func=_cloud)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

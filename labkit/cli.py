"""The ``labkit`` command: ``cloud`` (the local cloud), ``up``/``check``/``status``/``down``/``report`` (the lab),
``run``."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.config import DEFAULT_TARGET, TARGETS
from labkit.errors import EXIT_CODES, CheckpointError, LabkitError
from labkit.localcloud import checkpoints, control

if TYPE_CHECKING:  # pragma: no cover - types only
    from labkit.session import Lab


def _cloud(args: argparse.Namespace) -> int:
    home = Path(args.home).resolve() if args.home else None
    if args.verb in ("snapshot", "restore"):
        return _checkpoint(args, home)
    if args.verb == "start":
        delays = _delays(args.delay)
        status = control.start_cloud(port=args.port, home=home, fresh=args.fresh,
                                     realistic=True if args.realistic else None, delays=delays or None)
        if status.note:
            print(f"note: {status.note}")
        print(f"local cloud running at {status.endpoint} (pid {status.pid}, home {status.home})")
        if args.realistic or delays:
            _print_timing(control.cloud_timing(home))
        print("use it from a shell with:  eval \"$(labkit cloud env)\"")
    elif args.verb == "stop":
        print("local cloud stopped" if control.stop_cloud(home) else "local cloud was not running")
    elif args.verb == "status":
        status = control.cloud_status(home)
        if not status.running:
            print(f"local cloud: stopped (home {status.home})")
            return 3
        health = control.cloud_health(home)
        if args.json:
            print(json.dumps(health["services"], indent=2, default=str))
            return 0
        from labkit import terminal

        print("\n".join(terminal.wrap(f"local cloud: running at {status.endpoint} (pid {status.pid}, home "
                                       f"{status.home})", terminal.width(), "  ", "")))
        print(terminal.services_text(health["services"]))
    elif args.verb == "reset":
        done = control.reset_cloud(home)
        print("local cloud state emptied (records, databases, functions, instances, schedules, saved state)"
              + ("" if done["running"] else "; the cloud is stopped and starts empty"))
    elif args.verb == "env":
        from labkit.awscli import shell_lines

        env = control.cloud_env(home)
        print("\n".join(shell_lines(env, control.cloud_status(home).home)))
    elif args.verb == "clock":
        return _clock(args, home)
    elif args.verb == "timing":
        return _timing(args, home)
    elif args.verb == "logs":
        return _instance_log(args, home)
    elif args.verb == "schedule":
        firings = sorted(control.schedule_history(home) + control.scheduler_history(home), key=lambda f: f["time"])
        for firing in firings:
            print(f"{firing['time']}  {_fired(firing)} -> {firing['target']}: {firing['status']}"
                  + (f" ({firing['error']})" if firing.get("error") else ""))
        if not firings:
            print("no scheduled rule or schedule has fired yet")
    return 0


def _fired(firing: dict[str, Any]) -> str:
    """What fired: a rule's name, or ``schedule GROUP/NAME`` for an EventBridge Scheduler schedule."""
    return firing.get("rule") or f"schedule {firing.get('group')}/{firing.get('schedule')}"


def _checkpoint(args: argparse.Namespace, home: Path | None) -> int:
    """``labkit cloud snapshot NAME`` / ``labkit cloud restore NAME`` (without NAME: the checkpoints there are)."""
    if not args.args:
        found = checkpoints.listing(home or control.default_home())
        for item in found:
            print(f"{item['name']:<24} {item['bytes'] / 2**20:8.1f} MiB  {item['written']}  {item['path']}")
        if not found:
            print("no checkpoints yet: make one with `labkit cloud snapshot NAME`")
        if args.verb == "restore":
            raise CheckpointError("name the checkpoint to restore", "e.g. `labkit cloud restore steps-1-7`")
        return 0
    name = args.args[0]
    if args.verb == "snapshot":
        made = control.snapshot_cloud(name, home)
        print(f"checkpoint {name}: {made['path']} ({made['bytes'] / 2**20:.1f} MiB, {made['seconds']:.1f} s)")
        return 0
    status = control.restore_cloud(name, home, port=args.port)
    print(f"lab restored from checkpoint {name}; local cloud running at {status.endpoint} (home {status.home})")
    return 0


def _delays(given: list[str] | None) -> dict[str, float]:
    """``--delay NAME=SECONDS`` options as {name: seconds} (the cloud checks the names)."""
    delays = {}
    for item in given or []:
        name, _, value = item.partition("=")
        try:
            delays[name.strip()] = float(value)
        except ValueError:
            raise LabkitError(f"--delay {item!r} is not NAME=SECONDS",
                              "e.g. --delay iam_propagation=5 (seconds of lab time)") from None
    return delays


def _print_timing(setting: dict[str, Any]) -> None:
    mode = ("realistic: the cloud takes AWS's time" if setting["realistic"]
            else "fast: the cloud does at once what AWS takes time for")
    print(f"timing {mode}")
    for name, seconds in setting["delays"].items():
        print(f"  {name:<16} {seconds:g} s{'' if setting['realistic'] else ' (when realistic)'}")


def _timing(args: argparse.Namespace, home: Path | None) -> int:
    action = args.args[0] if args.args else None
    if action not in (None, "realistic", "fast"):
        raise LabkitError(f"unknown timing {action!r}", "use `labkit cloud timing [realistic|fast] [--delay NAME=SECONDS]`")
    delays = _delays(args.delay)
    if action is None and not delays:
        _print_timing(control.cloud_timing(home))
    else:
        _print_timing(control.set_timing(None if action is None else action == "realistic", delays, home))
    return 0


def _clock(args: argparse.Namespace, home: Path | None) -> int:
    seconds = (args.seconds or 0) + (args.minutes or 0) * 60 + (args.hours or 0) * 3600 + (args.days or 0) * 86400
    action = args.args[0] if args.args else None
    if action not in (None, "advance"):
        raise LabkitError(f"unknown clock action {action!r}", "use `labkit cloud clock` or `labkit cloud clock advance`")
    if action == "advance":
        if seconds <= 0:
            raise LabkitError("say how far to move the clock", "e.g. `labkit cloud clock advance --hours 24`")
        result = control.advance_clock(seconds, home)
        print(f"lab time is now {result['now']}")
        for firing in result["firings"]:
            print(f"  {firing['time']}  {_fired(firing)} -> {firing['target']}: {firing['status']}"
                  + (f" ({firing['error']})" if firing.get("error") else ""))
        if not result["firings"]:
            print("  no scheduled rule or schedule was due")
    else:
        info = control.lab_clock(home)
        offset = dt.timedelta(seconds=round(info["offset_seconds"]))
        print(f"lab time {info['now']} (real time + {offset}, {info['offset_seconds']:.0f} s)")
    return 0


def _instance_log(args: argparse.Namespace, home: Path | None) -> int:
    if not args.args:
        raise LabkitError("name the instance", "e.g. `labkit cloud logs i-0123456789abcdef0`")
    text = control.user_data_log(args.args[0], home)
    if text is None:
        raise LabkitError(f"no user-data log for {args.args[0]}", "check the instance id with `labkit status`")
    print(text, end="")
    return 0


def _lab(args: argparse.Namespace) -> Lab:
    from labkit.session import Lab

    return Lab(target=args.target, name=args.lab, region=args.region, policies=getattr(args, "policies", None),
               confirm=getattr(args, "yes", False))


def _up(args: argparse.Namespace) -> int:
    from labkit import checks
    from labkit.steps import run_steps

    lab = _lab(args)
    if lab.target.bills:
        from labkit.costs import cost_frame

        lab.target.require_confirmation("Creating the lab")  # the cost table is in its message
        print("\n".join(f"{k}: {v}" for k, v in lab.target.describe().items()))
        print(cost_frame(lab.region).to_string(index=False))
    try:
        run_steps(lab, 1, args.through, progress=lambda step: print(f"step {step.number:>2}: {step.title}"))
    except LabkitError:
        if lab.target.bills:
            from labkit.runner import leftovers

            print(leftovers(lab.config.target, lab.name, lab.region), file=sys.stderr)
            print(f"delete it with: labkit down --target {lab.config.target} --lab {lab.name} --region {lab.region} --yes",
                  file=sys.stderr)
        raise
    frame = checks.all_checks(lab, args.through)
    print(f"{int(frame['passed'].sum())}/{len(frame)} checks passed")
    return 0 if frame["passed"].all() else 1


def _check(args: argparse.Namespace) -> int:
    from labkit import checks, terminal

    frame = checks.all_checks(_lab(args), args.through)
    print(terminal.frame_text(frame))
    print(f"{int(frame['passed'].sum())}/{len(frame)} checks passed")
    return 0 if frame["passed"].all() else 1


def _tasks(args: argparse.Namespace) -> int:
    from labkit import tasks, terminal

    if args.json:
        from labkit.tasks import tasks_document

        print(json.dumps(tasks_document(_lab(args)), indent=2))
        return 0
    frame = tasks.tasks_frame(_lab(args))
    print(terminal.tasks_text(frame))
    print(f"{int(frame['passed'].sum())}/{len(frame)} tasks passed")
    return 0


def _status(args: argparse.Namespace) -> int:
    from labkit import checks, compute, functions, health, network, terminal

    lab = _lab(args)
    if args.urls:
        try:
            print(f"The order app: {compute.browser_url(lab)}")
            if note := compute.app_note(lab):
                print(f"  ({note})")
        except LabkitError:
            print("The order app is not deployed yet (step 8).")
        return 0
    parts = health.health_frame(lab)
    print("== parts")
    print(terminal.frame_text(parts))
    if (parts["part"] == "AWS API").any() and parts.iloc[0]["state"] == "down":
        return 1
    instance = compute.instance_frame(lab)
    for title, frame in (("network", network.network_frame(lab)), ("instance", instance.drop(columns=["runs as"])),
                         ("functions", functions.functions_frame(lab))):
        print(f"== {title}")
        print(terminal.frame_text(frame) if not frame.empty else "(none)")
        if title == "instance" and not frame.empty:  # what the instance is here: a sandbox on the local cloud
            print("\n".join(terminal.wrap(instance.iloc[0]["runs as"], terminal.width(), "  ", "runs as: ")))
    frame = checks.all_checks(lab)
    print("== checks")
    print(frame.groupby("step")["passed"].agg(["sum", "count"]).rename(
        columns={"sum": "passed", "count": "checks"}).to_string())
    print(f"{int(frame['passed'].sum())}/{len(frame)} checks passed")
    return 0


def _down(args: argparse.Namespace) -> int:
    from labkit import teardown

    left = teardown.delete_everything(_lab(args), confirm=args.yes, progress=print)
    if left.empty:
        print("nothing of the lab is left")
        return 0
    print("still there:\n" + left.to_string(index=False))
    return 1


def _run(args: argparse.Namespace) -> int:
    from labkit.runner import run_notebooks

    summary = run_notebooks(target=args.target, start=args.start, end=args.end,
                            output_dir=Path(args.output_dir) if args.output_dir else None,
                            lab_name=args.lab or "orders-lab", region=args.region, confirm=args.yes,
                            cell_timeout=args.cell_timeout, solutions=not args.no_solutions)
    print(summary.table())
    print(f"executed notebooks and summary.json in {summary.output_dir}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from labkit.report import write_report

    path = write_report(_lab(args), args.output, student=args.student)
    print(f"the lab report: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    codes = "exit status: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())
    parser = argparse.ArgumentParser(prog="labkit", description="Orders Lab: the AWS order system, step by step.",
                                     epilog=codes)
    sub = parser.add_subparsers(dest="command", required=True)

    cloud = sub.add_parser("cloud", help="the embedded local cloud on 127.0.0.1", epilog=codes,
                           description="The local cloud keeps the lab in its state folder: stop and start (or a "
                           "crash and a start) keep every resource. snapshot NAME saves the whole lab as a checkpoint "
                           "file, restore NAME brings one back (a name in the lab's checkpoints/ folder or in "
                           "LABKIT_CHECKPOINTS, or a path); reset empties the lab. timing shows or switches realistic "
                           "mode.")
    cloud.add_argument("verb", choices=["start", "stop", "status", "reset", "env", "clock", "logs", "schedule",
                                        "snapshot", "restore", "timing"])
    cloud.add_argument("args", nargs="*", help="clock: [advance]; logs: INSTANCE_ID; snapshot/restore: NAME; "
                       "timing: [realistic|fast]")
    cloud.add_argument("--realistic", action="store_true", help="start: take AWS's time (RDS reboots, IAM "
                       "propagation, endpoints pending; default LABKIT_REALISTIC)")
    cloud.add_argument("--delay", action="append", metavar="NAME=SECONDS", help="start, timing: one of the realistic "
                       "delays (rds_reboot, rds_create, iam_propagation, endpoint_create)")
    cloud.add_argument("--port", type=int, default=None, help="port (default 4566 or LABKIT_CLOUD_PORT)")
    cloud.add_argument("--home", default=None, help="state folder (default .labkit or LABKIT_HOME)")
    cloud.add_argument("--json", action="store_true", help="status: the services' state as JSON, as the cloud gives it")
    cloud.add_argument("--fresh", action="store_true",
                       help="start: move the saved lab aside (state.old-<time>) and start an empty one")
    for unit in ("seconds", "minutes", "hours", "days"):
        cloud.add_argument(f"--{unit}", type=float, default=None)
    cloud.set_defaults(func=_cloud)

    def lab_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", choices=TARGETS, default=None, help="default: local (or LABKIT_TARGET)")
        p.add_argument("--lab", default=None, help="lab name, the lab=<name> tag (default orders-lab)")
        p.add_argument("--region", default=None)

    up = sub.add_parser("up", help="run steps 1..N (idempotent)")
    lab_options(up)
    up.add_argument("--through", type=int, default=13, choices=range(1, 14), metavar="N")
    up.add_argument("--policies", choices=["managed", "least-privilege"], default=None)
    up.add_argument("--yes", action="store_true", help="confirm creating resources on AWS")
    up.set_defaults(func=_up)
    check = sub.add_parser("check", help="run every step's checks")
    lab_options(check)
    check.add_argument("--through", type=int, default=13)
    check.set_defaults(func=_check)
    your_turn = sub.add_parser("tasks", help="the 'Your turn' tasks of steps 1-13: passed or not yet, with hints")
    lab_options(your_turn)
    your_turn.add_argument("--json", action="store_true",
                           help="as JSON, with each task's record (first passed, by the reference solution or not)")
    your_turn.set_defaults(func=_tasks)
    status = sub.add_parser("status", help="resources as tables")
    lab_options(status)
    status.add_argument("--urls", action="store_true", help="only print the app's URL")
    status.set_defaults(func=_status)
    down = sub.add_parser("down", help="delete everything of the lab and show what remains")
    lab_options(down)
    down.add_argument("--yes", action="store_true", help="confirm deleting on AWS")
    down.set_defaults(func=_down)
    report = sub.add_parser("report", help="write the lab report: one self-contained HTML page")
    lab_options(report)
    report.add_argument("--output", default=None, help="default runs/report-<lab>-<time>.html")
    report.add_argument("--student", default=None, help="the student it names (default: the Hub user, else "
                                                          "this account's name)")
    report.set_defaults(func=_report)
    run = sub.add_parser("run", help="execute the notebooks in order with papermill")
    run.add_argument("--target", choices=TARGETS, default=DEFAULT_TARGET)
    run.add_argument("--lab", default=None, help="lab name, the lab=<name> tag (default orders-lab)")
    run.add_argument("--region", default=None, help="default: LABKIT_REGION, then AWS_REGION/AWS_DEFAULT_REGION/"
                                                    "the profile's region on aws, us-east-1 on local")
    run.add_argument("--yes", action="store_true", help="confirm creating (and, in 99, deleting) resources on AWS")
    run.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                     help="per cell (default 900 on local, 7200 on aws: RDS alone takes 10-20 minutes)")
    run.add_argument("--from", dest="start", type=int, default=None, metavar="NN")
    run.add_argument("--to", dest="end", type=int, default=None, metavar="NN")
    run.add_argument("--output-dir", default=None, help="default runs/<timestamp>/")
    run.add_argument("--no-solutions", action="store_true",
                     help="leave the 'Your turn' tasks to you (by default their reference solutions run)")
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

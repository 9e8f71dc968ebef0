"""How long a full lab takes to come back (issue 23): stop and start, kill -9 and start, and a checkpoint.

Builds a lab (steps 1-13) in a scratch home (or uses the lab in HOME, whose cloud may run), then per round: a clean
stop (it saves everything once more) and a start, timed to the moment the daemon answers and the lab is usable
(``labkit cloud start`` returns once the databases have restarted and the instances booted), then to the app
answering at its URL and to a cold Lambda answering (target: under 15 s); the same after ``kill -9`` of the daemon;
an empty lab's start beside it. Then a checkpoint: its size and time, and a restore into another home until that
lab's app answers. Figures, not assertions. Usage: ``python bench/bench_state_start.py [ROUNDS] [HOME PORT APP_PORT]``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from common import free_port, report, scratch_home

from labkit import Lab, compute, iam
from labkit.localcloud import control
from labkit.steps import run_steps

ORDER = json.dumps({"customer_name": "Bench", "product": "X", "quantity": 1, "amount": "1.00"}).encode()


def _app(lab: Lab, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(compute.app_url(lab) + "healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the app did not answer")


def usable(lab: Lab, started: float) -> dict[str, float]:
    """From ``started`` (before the start): the lab's marks."""
    marks = {"start returns (lab usable)": time.perf_counter() - started}
    _app(lab, time.monotonic() + 120)
    marks["app answers"] = time.perf_counter() - started
    lab.client("lambda").invoke(FunctionName=iam.VALIDATOR_FUNCTION, Payload=ORDER)["Payload"].read()
    marks["a cold Lambda answers"] = time.perf_counter() - started
    return marks


def restart(lab: Lab, kill: bool) -> dict[str, float]:
    home = lab.config.home
    started = time.perf_counter()
    if kill:
        status = control.cloud_status(home)
        os.kill(status.pid, signal.SIGKILL)
        psutil.Process(status.pid).wait(10)
        stopped = 0.0
    else:
        control.stop_cloud(home)
        stopped = time.perf_counter() - started
    started = time.perf_counter()
    control.start_cloud(port=lab.config.cloud_port, home=home)
    return {"stop (saves everything)": stopped, **usable(lab, started)}


def empty_start() -> float:
    with scratch_home("labkit-bench-empty-") as home:
        started = time.perf_counter()
        control.start_cloud(port=free_port(), home=home)
        elapsed = time.perf_counter() - started
        control.stop_cloud(home)
    return elapsed


def checkpoint(lab: Lab) -> None:
    made = control.snapshot_cloud("bench", lab.config.home)
    report("checkpoint: size", made["bytes"] / 2**20, "MiB")
    report("checkpoint: snapshot (requests held while frozen)", made["manifest"]["seconds"]["frozen"], "s")
    report("checkpoint: snapshot (databases as SQL, disks)", made["manifest"]["seconds"]["files"], "s")
    report("checkpoint: snapshot (packed into one file)", made["pack_seconds"], "s")
    report("checkpoint: snapshot in all", made["seconds"], "s")
    with scratch_home("labkit-bench-restored-") as home:
        started = time.perf_counter()
        status = control.restore_cloud(made["path"], home, port=free_port())
        other = Lab(target="local", name=lab.name, cloud_port=status.port, app_port=lab.config.app_port, home=home)
        for name, value in usable(other, started).items():
            report(f"checkpoint: restore into another home, {name}", value, "s")
        control.stop_cloud(home)
    Path(made["path"]).unlink()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if len(sys.argv) > 4:
        home, port, app_port = Path(sys.argv[2]).resolve(), int(sys.argv[3]), int(sys.argv[4])
        scratch = None
    else:
        scratch = scratch_home("labkit-bench-start-")
        home, port, app_port = scratch.__enter__(), free_port(), free_port()
    try:
        named = {"name": "bench-lab"} if scratch is not None else {}  # a given lab keeps its own name
        lab = Lab(target="local", cloud_port=port, app_port=app_port, home=home, **named)
        if scratch is not None:
            started = time.perf_counter()
            run_steps(lab, 1, 13)
            report("building the lab (steps 1-13)", time.perf_counter() - started, "s")
        for number in range(1, rounds + 1):
            for kill in (False, True):
                for name, value in restart(lab, kill).items():
                    if not (kill and name.startswith("stop")):
                        target = "(target < 15 s)" if name == "a cold Lambda answers" else ""
                        report(f"round {number}, {'kill -9' if kill else 'stop'} + start: {name}", value, "s", target)
            report(f"round {number}, an empty lab's start", empty_start(), "s")
        state = control.cloud_state(home)
        report("loading the saved records at the start", state["load_seconds"], "s")
        checkpoint(lab)
    finally:
        if scratch is not None:
            control.stop_cloud(home)
            scratch.__exit__(None, None, None)


if __name__ == "__main__":
    main()

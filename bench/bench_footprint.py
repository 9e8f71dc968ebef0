"""The footprint of one lab, and of K labs side by side.

One lab: every step on a local cloud of its own, a few orders through the app, then idle; prints the
memory of each part (RSS and USS: what the process alone holds) — the cloud daemon, each database
server, each warm Lambda worker, the app — and the idle CPU of all of them: 30 s after the last order, with
the validator's warm worker still alive (as a warm container is on AWS: what a class holds while students
work), and again once the idle Lambda workers are reaped; and the peak while the series ran (for a pod's
memory limit). Then K labs built at once against one lab alone (wall time). Usage: ``python bench/bench_footprint.py [--labs K] [--idle-seconds S]``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import free_port, scratch_home

from labkit import Lab, compute, teardown
from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, find_marked
from labkit.steps import run_steps

MIB = 1024 * 1024


def build_lab(home: Path, name: str = "bench-lab") -> Lab:
    lab = Lab(target="local", name=name, cloud_port=free_port(), app_port=free_port(), home=home)
    run_steps(lab, 1, 13)
    return lab


def send_orders(lab: Lab, count: int = 5) -> None:
    url = compute.app_url(lab) + "api/orders"
    for i in range(count):
        body = json.dumps({"customer_name": f"Bench {i}", "product": "Footprint", "quantity": 1,
                           "amount": "1.00"}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def part_of(proc: psutil.Process, daemon_pid: int) -> str:
    """The part of the lab a process belongs to, by its command line or its nearest known ancestor's."""
    for each in [proc, *proc.parents()]:
        if each.pid == daemon_pid:
            return "cloud daemon" if each is proc else "other"
        try:
            cmd = " ".join(each.cmdline())
        except psutil.Error:
            continue
        if "mariadbd" in cmd or "mysqld" in cmd:
            return "database server"
        if "awslambdaric" in cmd or "lambda_runtime" in cmd or "bootstrap" in cmd:
            return "Lambda worker"
        if "hypercorn" in cmd or "gunicorn" in cmd:
            return "app (hypercorn)"
    return "other"


def parts(status: control.CloudStatus) -> list[tuple[str, psutil.Process]]:
    found = []
    for pid in dict.fromkeys([status.pid, *find_marked(CLOUD_MARKER, status.cloud_id)]):
        try:
            proc = psutil.Process(pid)
            found.append((part_of(proc, status.pid), proc))
        except psutil.Error:
            pass
    return found


def memory_table(status: control.CloudStatus, title: str) -> dict[str, tuple[float, float]]:
    """Print each process's memory; return RSS and USS (MiB) by part, and the whole lab's under "lab"."""
    rows, total_rss, total_uss = [], 0, 0
    by_part: dict[str, tuple[float, float]] = {}
    for part, proc in parts(status):
        try:
            info = proc.memory_full_info()
            what = " ".join(proc.cmdline())[:60] if part == "other" else ""
        except psutil.Error:
            continue
        rows.append((part, proc.pid, info.rss / MIB, info.uss / MIB, what))
        total_rss += info.rss
        total_uss += info.uss
        rss, uss = by_part.get(part, (0.0, 0.0))
        by_part[part] = (rss + info.rss / MIB, uss + info.uss / MIB)
    print(f"== {title}")
    print(f"{'part':<18} {'pid':>8} {'RSS MiB':>9} {'USS MiB':>9}")
    for part, pid, rss, uss, what in sorted(rows):
        print(f"{part:<18} {pid:>8} {rss:>9.1f} {uss:>9.1f}  {what}")
    print(f"{'the whole lab':<18} {'':>8} {total_rss / MIB:>9.1f} {total_uss / MIB:>9.1f}   (aim: <= 300 MiB idle)")
    by_part["lab"] = (total_rss / MIB, total_uss / MIB)
    return by_part


def idle_cpu(status: control.CloudStatus, seconds: float) -> float:
    procs = [p for _, p in parts(status)]

    def cpu() -> float:
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    before = cpu()
    time.sleep(seconds)
    return (cpu() - before) / seconds * 100


class PeakSampler(threading.Thread):
    """The highest RSS, sampled twice a second while the series runs, of the lab's processes together and of
    this process (which runs the steps, as a notebook kernel would)."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home, self.lab, self.steps = home, 0.0, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            status = control.cloud_status(self.home)
            if status.running:
                total = 0
                for _, proc in parts(status):
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                self.lab = max(self.lab, total / MIB)
            self.steps = max(self.steps, psutil.Process().memory_info().rss / MIB)

    def stop(self) -> None:
        self.done.set()
        self.join()
        print(f"peak while the series ran: the lab's processes {self.lab:.0f} MiB RSS together, the process "
              f"running the steps {self.steps:.0f} MiB")


def timed_labs(count: int) -> float:
    with contextlib.ExitStack() as stack:
        return _timed_labs([stack.enter_context(scratch_home()) for _ in range(count)])


def _timed_labs(homes: list[Path]) -> float:
    errors: list[BaseException] = []

    def one(home: Path) -> None:
        try:
            build_lab(home)
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(h,)) for h in homes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for home in homes:
        control.stop_cloud(home)
    if errors:
        raise errors[0]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labs", type=int, default=2, help="K labs built at once (default 2)")
    parser.add_argument("--idle-seconds", type=float, default=30,
                        help="idle time after the last order before measuring with the warm worker (default 30)")
    parser.add_argument("--reap-seconds", type=float, default=50,
                        help="the Lambda service's idle limit for this bench (LABKIT_LAMBDA_IDLE_SECONDS; 300 in a "
                             "lab): the bench measures again once the idle workers are reaped")
    args = parser.parse_args()
    os.environ["LABKIT_LAMBDA_IDLE_SECONDS"] = str(args.reap_seconds)

    with scratch_home() as home:
        one_lab = one_lab_idle(home, args)
    print("== wall time to build a lab (steps 1-13)")
    print(f"one lab alone: {one_lab:.1f} s")
    if args.labs > 1:
        elapsed = timed_labs(args.labs)
        print(f"{args.labs} labs at once: {elapsed:.1f} s ({elapsed / one_lab:.2f} x one lab)")


def one_lab_idle(home: Path, args: argparse.Namespace) -> float:
    """Build one lab, measure it warm and once its workers are reaped, delete it; the build's wall time."""
    sampler = PeakSampler(home)
    sampler.start()
    started = time.monotonic()
    lab = build_lab(home)
    one_lab = time.monotonic() - started
    try:
        send_orders(lab)
        sampler.stop()
        time.sleep(args.idle_seconds)
        status = control.cloud_status(home)
        warm = memory_table(status, f"one lab after the series, {args.idle_seconds:.0f} s after the last order "
                                    "(the validator's worker warm)")
        if "Lambda worker" in warm:
            worker_rss, worker_uss = warm["Lambda worker"]
            print(f"with a warm worker, {args.idle_seconds:.0f} s after the last order: the lab {warm['lab'][0]:.1f} MiB "
                  f"RSS (aim <= 300), the worker's own {worker_rss:.1f} RSS / {worker_uss:.1f} USS")
        else:
            print("no warm Lambda worker at this point: raise --reap-seconds above --idle-seconds")
        print(f"idle CPU of the whole lab: {idle_cpu(status, 10):.2f} % of one core")
        time.sleep(max(0.0, args.reap_seconds - args.idle_seconds))  # idle since the orders: reap + 10 s
        memory_table(status, f"the same lab once its idle Lambda workers are reaped (after {args.reap_seconds:.0f} s)")
        print(f"idle CPU of the whole lab: {idle_cpu(status, 10):.2f} % of one core")
        teardown.delete_everything(lab)
    finally:
        control.stop_cloud(home)
    return one_lab


if __name__ == "__main__":
    main()

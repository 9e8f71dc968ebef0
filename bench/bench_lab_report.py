"""`labkit report` on a whole lab (steps 1-13): seconds to build the page and the API calls it sends.

The page reads the lab once (labkit.snapshot) and asks its sections' questions side by side; the figures
here are what a student waits for. Provisions a throwaway local cloud, builds the report RUNS times in one
process (the first pays matplotlib's import, as `labkit report` does) and stops the cloud.
"""
from __future__ import annotations

import sys
import time
from collections import Counter

from common import free_port, report, scratch_home

from labkit import Lab, teardown
from labkit.localcloud import control
from labkit.report import build_report
from labkit.steps import run_steps

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def main() -> None:
    with scratch_home() as home:
        lab = Lab(target="local", name="bench-lab", cloud_port=free_port(), app_port=free_port(), home=home)
        try:
            run_steps(lab, 1, 13)
            for run in range(1, RUNS + 1):
                before = max((c.number for c in lab.calls.calls), default=0)
                started = time.perf_counter()
                build_report(lab)
                elapsed = time.perf_counter() - started
                sent = Counter(c.operation for c in list(lab.calls.calls) if c.number > before)
                report(f"report {run}: seconds", elapsed, "s")
                report(f"report {run}: API calls sent", sum(sent.values()), "calls",
                       f"(SSM command polls {sent['GetCommandInvocation']})")
            teardown.delete_everything(lab)
        finally:
            control.stop_cloud(home)


if __name__ == "__main__":
    main()

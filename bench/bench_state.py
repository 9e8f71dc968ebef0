"""What keeping the lab's state costs (issue 23): the hot paths, a mutating call, and the idle footprint, side by side.

Two throwaway clouds run at once, one with ``LABKIT_STATE=off`` (the lab in memory only, as before issue 23) and one
keeping its state; each round measures one then the other, and then the two read paths are measured once more with one
call on each cloud in turn (the fairest side-by-side on a shared machine). Printed: warm Lambda
invoke p50 and GetSecretValue p50 (targets: state on within 10% of off), the p50 of two mutating calls (CreateTags on
EC2, PutSecretValue: each waits for its service's save and fsync), what one save cost inside the daemon (pickling,
writing), and each daemon's RSS/USS once idle (target: at most 10 MiB more). Figures, not assertions: run it on a
quiet machine (other engineers' suites move every figure by +-30%). Usage: ``python bench/bench_state.py [ROUNDS]``.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import zipfile

import psutil
from common import LAMBDA_TRUST, client, free_port, p50, percentile, report, scratch_home

from labkit.lambda_platform import runtime as lambda_runtime
from labkit.localcloud import control

SOURCE = "def lambda_handler(event, context):\n    return {'ok': True}\n"
POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@contextlib.contextmanager
def cloud(mode: str):
    with scratch_home(f"labkit-bench-state-{mode}-") as home:
        previous = os.environ.get("LABKIT_STATE")
        os.environ["LABKIT_STATE"] = mode
        try:
            status = control.start_cloud(port=free_port(), home=home)
        finally:
            if previous is None:
                os.environ.pop("LABKIT_STATE", None)
            else:
                os.environ["LABKIT_STATE"] = previous
        try:
            yield status
        finally:
            control.stop_cloud(home)


def prepare(status: control.CloudStatus) -> dict:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", SOURCE)
    iam, lam, sm, ec2 = (client(status, s) for s in ("iam", "lambda", "secretsmanager", "ec2"))
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.attach_role_policy(RoleName="bench", PolicyArn=POLICY)
    lam.create_function(FunctionName="trivial", Runtime=lambda_runtime(), Role=role,
                        Handler="lambda_function.lambda_handler", Code={"ZipFile": buffer.getvalue()})
    lam.get_waiter("function_active_v2").wait(FunctionName="trivial")
    sm.create_secret(Name="bench-secret", SecretString="x")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    lam.invoke(FunctionName="trivial")["Payload"].read()  # the cold start
    return {"lambda": lam, "sm": sm, "ec2": ec2, "vpc": vpc}


def interleaved(off: dict, on: dict, n: int) -> dict[str, tuple[float, float]]:
    """The read paths, one call on each cloud in turn (off, on, off, on ...): both see the same moment's load, so
    the comparison is side by side call by call; {name: (p50 off, p50 on)}."""
    calls = {"invoke": lambda c: c["lambda"].invoke(FunctionName="trivial")["Payload"].read(),
             "get_secret": lambda c: c["sm"].get_secret_value(SecretId="bench-secret")}
    out = {}
    for name, call in calls.items():
        times: dict[str, list[float]] = {"off": [], "on": []}
        for c in (off, on):
            call(c)
        for _ in range(n):
            for mode, c in (("off", off), ("on", on)):
                started = time.perf_counter()
                call(c)
                times[mode].append((time.perf_counter() - started) * 1000)
        out[name] = (percentile(times["off"], 50), percentile(times["on"], 50))
    return out


def measure(c: dict) -> dict[str, float]:
    """One round on one cloud: the p50 of each call."""
    lam, sm, ec2, vpc = c["lambda"], c["sm"], c["ec2"], c["vpc"]
    counter = iter(range(10**6))
    return {"invoke": p50(lambda: lam.invoke(FunctionName="trivial")["Payload"].read(), 200),
            "get_secret": p50(lambda: sm.get_secret_value(SecretId="bench-secret"), 300),
            "create_tags": p50(lambda: ec2.create_tags(Resources=[vpc], Tags=[{"Key": "n", "Value": str(next(counter))}]),
                               50),
            "put_secret": p50(lambda: sm.put_secret_value(SecretId="bench-secret", SecretString=str(next(counter))), 50)}


def memory(status: control.CloudStatus) -> tuple[float, float]:
    info = psutil.Process(status.pid).memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def main(rounds: int = 5) -> None:
    with cloud("off") as off, cloud("on") as on:
        clients = {"off": prepare(off), "on": prepare(on)}
        figures: dict[str, dict[str, list[float]]] = {mode: {} for mode in clients}
        saves_before = control.cloud_state(on.home)
        for _ in range(rounds):
            for mode, c in clients.items():
                for name, value in measure(c).items():
                    figures[mode].setdefault(name, []).append(value)
        pairs = interleaved(clients["off"], clients["on"], 300 * rounds)
        saves = control.cloud_state(on.home)
        time.sleep(12)  # both daemons go quiet and give their free heap back (the daemon's trim when idle)
        for mode, status in (("off", off), ("on", on)):
            rss, uss = memory(status)
            figures[mode]["rss"], figures[mode]["uss"] = [rss], [uss]
    for name, unit in (("invoke", "ms"), ("get_secret", "ms"), ("create_tags", "ms"), ("put_secret", "ms"),
                       ("rss", "MiB"), ("uss", "MiB")):
        off_values, on_values = figures["off"][name], figures["on"][name]
        report(f"{name} p50, state off" if unit == "ms" else f"daemon {name} idle, state off", min(off_values), unit,
               f"rounds {', '.join(f'{v:.2f}' for v in off_values)}")
        ratio = min(on_values) / min(off_values)
        middle = sorted(on_values)[len(on_values) // 2] / sorted(off_values)[len(off_values) // 2]
        report(f"{name} p50, state on" if unit == "ms" else f"daemon {name} idle, state on", min(on_values), unit,
               f"rounds {', '.join(f'{v:.2f}' for v in on_values)}; best-round ratio {ratio:.3f}, "
               f"median-round ratio {middle:.3f}")
    for name, (off_p50, on_p50) in pairs.items():
        report(f"{name} p50 interleaved, state off", off_p50, "ms", f"{300 * rounds} calls, one on each cloud in turn")
        report(f"{name} p50 interleaved, state on", on_p50, "ms", f"ratio {on_p50 / off_p50:.3f} (target <= 1.10)")
    count = saves["saves"] - saves_before["saves"]
    if count:
        pickle_ms = (saves["pickle_ms"] - saves_before["pickle_ms"]) / count
        write_ms = (saves["write_ms"] - saves_before["write_ms"]) / count
        report("one save: pickling (mean)", pickle_ms, "ms", f"{count} saves in the rounds")
        report("one save: atomic write + fsync (mean)", write_ms, "ms",
               "(LABKIT_STATE_SYNC=off skips the fsync)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

"""What EventBridge Scheduler's schedules cost on the lab clock, in real seconds (labkit/localcloud/events/scheduler.py).

One cloud, one function and an execution role: a 24-hour advance with one daily schedule, with an hourly one (24
invocations), with a schedule whose role may not invoke the function (AWS's default RetryPolicy: a retry every few
minutes for the whole day), and the daemon's CPU while 500 schedules wait (its loop looks at them every second).
``python bench/bench_scheduler.py`` (about two minutes).
"""
from __future__ import annotations

import io
import json
import time
import zipfile

import psutil
from common import LAMBDA_TRUST, client, control, free_port, report, scratch_home

from labkit.lambda_platform import runtime as lambda_runtime

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


def advance(status, seconds: float) -> tuple[float, int]:
    started = time.monotonic()
    firings = control.advance_clock(seconds, status.home)["firings"]
    return time.monotonic() - started, len(firings)


def main() -> None:
    with scratch_home() as home:
        status = control.start_cloud(port=free_port(), home=home)
        try:
            iam, lam, scheduler = (client(status, s) for s in ("iam", "lambda", "scheduler"))
            execution = iam.create_role(RoleName="bench-fn-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
            fn = lam.create_function(FunctionName="bench-sched", Runtime=lambda_runtime(), Role=execution,
                                     Handler="lambda_function.lambda_handler", Code={"ZipFile": _zip()})["FunctionArn"]
            lam.get_waiter("function_active_v2").wait(FunctionName="bench-sched")
            good = iam.create_role(RoleName="bench-sched-ok", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
            iam.put_role_policy(RoleName="bench-sched-ok", PolicyName="invoke", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn}]}))
            bad = iam.create_role(RoleName="bench-sched-denied", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
            off = {"Mode": "OFF"}

            def case(name: str, expression: str, role: str) -> None:
                scheduler.create_schedule(Name=name.replace(" ", "-"), ScheduleExpression=expression, FlexibleTimeWindow=off,
                                          Target={"Arn": fn, "RoleArn": role})
                seconds, fired = advance(status, 86400)
                scheduler.delete_schedule(Name=name.replace(" ", "-"))
                report(f"24 h advance, {name} ({fired} firings)", seconds, "s")

            advance(status, 60)  # a warm worker, as in a lab
            case("daily schedule", "cron(0 6 * * ? *)", good)
            case("hourly schedule", "cron(0 * * * ? *)", good)
            case("schedule whose role may not invoke", "cron(0 6 * * ? *)", bad)
            for n in range(500):
                scheduler.create_schedule(Name=f"idle-{n}", ScheduleExpression="cron(0 6 1 1 ? 2099)",
                                          FlexibleTimeWindow=off, Target={"Arn": fn, "RoleArn": good})
            daemon = psutil.Process(status.pid)
            before = daemon.cpu_times()
            time.sleep(20)
            after = daemon.cpu_times()
            busy = (after.user + after.system - before.user - before.system) / 20 * 100
            report("daemon CPU while 500 schedules wait", busy, "%", "(the loop's look every second)")
        finally:
            control.stop_cloud(home)


if __name__ == "__main__":
    main()

"""EventBridge Scheduler's schedules fire on the lab clock as on AWS: with the execution role, only when enabled,
within StartDate/EndDate, in their time zone, one-time ones once; failed deliveries are retried, dropped or
dead-lettered and counted in AWS/Scheduler; a restart keeps them."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from labkit.localcloud import control
from tests.helpers import start_test_cloud, stop_test_cloud
from tests.helpers.lambdas import create_function

RECORD = "def lambda_handler(event, context):\n    return event\n"
SCHEDULER_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _role(cloud, name: str, function_arn: str | None, trust: str = SCHEDULER_TRUST, extra: list | None = None) -> str:
    """An execution role Scheduler may assume, allowed lambda:InvokeFunction on ``function_arn`` (None: nothing)."""
    iam = cloud.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    statements = [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn}] \
        if function_arn else []
    statements += extra or []
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="invoke", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
    return arn


def _advance(cloud, seconds: float) -> list[dict]:
    return [f for f in cloud.request("POST", "/_labkit/clock/advance", {"seconds": seconds})["firings"]
            if "schedule" in f]


def _now(cloud) -> dt.datetime:
    return dt.datetime.fromisoformat(cloud.request("GET", "/_labkit/clock")["now"])


def _advance_to(cloud, hour: int) -> None:
    """Advance the lab clock to the next ``hour``:00 UTC, so that a test's window holds a known number of a daily
    cron's instants whatever the time of day it runs at (49 h from 23:30 hold three midnights)."""
    now = _now(cloud)
    target = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    _advance(cloud, (target - now).total_seconds())


def _invocations(cloud, name: str) -> list[str]:
    """The request ids of the function's runs, from its log group."""
    try:
        events = cloud.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except cloud.client("logs").exceptions.ResourceNotFoundException:
        return []
    return [e["message"].split()[2] for e in events if e["message"].startswith("START RequestId:")]


def test_rate_schedule_invokes_the_function_with_its_input_as_the_role(own_cloud):
    fn = create_function(own_cloud, "sched-rate-fn", RECORD)
    role = _role(own_cloud, "sched-rate-role", fn)
    scheduler = own_cloud.client("scheduler")
    arn = scheduler.create_schedule(
        Name="daily", ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fn, "RoleArn": role,
                "Input": json.dumps({"report": "daily", "at": "<aws.scheduler.scheduled-time>",
                                     "schedule": "<aws.scheduler.schedule-arn>"})})["ScheduleArn"]
    created = _now(own_cloud)
    firings = _advance(own_cloud, 49 * 3600)
    ok = [f for f in firings if f["status"] == "ok"]
    history = own_cloud.request("GET", "/_labkit/scheduler/history")["firings"]
    everything = [f for f in history if f["schedule"] == "daily"]
    # a rate schedule without StartDate starts at once (the loop may have fired that first instant already)
    assert [f["status"] for f in everything] == ["ok", "ok", "ok"], everything
    times = [dt.datetime.strptime(f["time"], STAMP).replace(tzinfo=dt.timezone.utc) for f in everything]
    assert abs(times[0] - created) < dt.timedelta(seconds=5)
    assert [b - a for a, b in zip(times, times[1:])] == [dt.timedelta(days=1)] * 2
    assert len(ok) >= 2
    event = json.loads(ok[-1]["result"])
    assert event == {"report": "daily", "at": ok[-1]["time"], "schedule": arn}
    assert len(_invocations(own_cloud, "sched-rate-fn")) == 3


OWN_CLOCK = ("import datetime\n"
             "def lambda_handler(event, context):\n"
             "    return {'event': event, 'own clock': datetime.datetime.now(datetime.timezone.utc).isoformat()}\n")


def test_a_lambda_target_without_input_gets_an_empty_object_at_its_instant(own_cloud):
    fn = create_function(own_cloud, "sched-empty-fn", OWN_CLOCK)
    role = _role(own_cloud, "sched-empty-role", fn)
    _advance_to(own_cloud, 18)  # noon falls at +18 h and +42 h
    own_cloud.client("scheduler").create_schedule(
        Name="no-input", ScheduleExpression="cron(0 12 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fn, "RoleArn": role})
    firings = _advance(own_cloud, 49 * 3600)
    assert [f["status"] for f in firings] == ["ok", "ok"]
    for firing in firings:
        instant = dt.datetime.strptime(firing["time"], STAMP).replace(tzinfo=dt.timezone.utc)
        assert instant.hour == 12
        result = json.loads(firing["result"])
        assert result["event"] == {}
        own = dt.datetime.fromisoformat(result["own clock"])
        assert dt.timedelta(0) <= own - instant < dt.timedelta(minutes=1), "the function runs at the instant"


def test_cron_in_a_time_zone_fires_on_that_wall_clock(own_cloud):
    fn = create_function(own_cloud, "sched-tz-fn", RECORD)
    role = _role(own_cloud, "sched-tz-role", fn)
    _advance_to(own_cloud, 6)  # midnight UTC falls at +18 h and +42 h, after its 15-minute window too
    own_cloud.client("scheduler").create_schedule(
        Name="nine-in-tokyo", ScheduleExpression="cron(0 9 * * ? *)", ScheduleExpressionTimezone="Asia/Tokyo",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}, Target={"Arn": fn, "RoleArn": role})
    firings = _advance(own_cloud, 49 * 3600)
    assert [f["status"] for f in firings] == ["ok", "ok"]
    assert {dt.datetime.strptime(f["time"], STAMP).strftime("%H:%M") for f in firings} == {"00:00"}  # 09:00 JST


@pytest.mark.parametrize(("given", "message"), [
    ({"ScheduleExpression": "rate(1 dy)"}, "Invalid Schedule Expression rate(1 dy)."),
    ({"ScheduleExpression": "at(2026-02-30T10:00:00)"}, "Invalid Schedule Expression at(2026-02-30T10:00:00)."),
    ({"ScheduleExpression": "cron(0 9 * * *)"}, "Invalid Schedule Expression cron(0 9 * * *)."),
    ({"ScheduleExpression": "rate(1 day)", "ScheduleExpressionTimezone": "Mars/Olympus"},
     "Invalid ScheduleExpressionTimezone Mars/Olympus."),
])
def test_an_expression_the_scheduler_cannot_read_is_refused(cloud, given, message):
    scheduler = cloud.client("scheduler")
    with pytest.raises(scheduler.exceptions.ValidationException) as refused:
        scheduler.create_schedule(Name="unreadable", FlexibleTimeWindow={"Mode": "OFF"}, **given, Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "RoleArn": "arn:aws:iam::123456789012:role/r"})
    assert refused.value.response["Error"]["Message"] == message
    assert "unreadable" not in [s["Name"] for s in scheduler.list_schedules()["Schedules"]]


def test_without_permission_nothing_is_delivered_and_the_failure_is_counted(own_cloud):
    fn = create_function(own_cloud, "sched-denied-fn", RECORD)
    no_policy = _role(own_cloud, "sched-no-policy", None)
    lambda_trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    wrong_trust = _role(own_cloud, "sched-wrong-trust", fn, trust=lambda_trust)
    scheduler = own_cloud.client("scheduler")
    _advance_to(own_cloud, 12)  # 06:00 falls once in the next 25 h, its retries too
    start = _now(own_cloud)
    for name, role in (("denied", no_policy), ("untrusted", wrong_trust)):
        scheduler.create_schedule(
            Name=name, ScheduleExpression="cron(0 6 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": fn, "RoleArn": role, "RetryPolicy": {"MaximumRetryAttempts": 2,
                                                                "MaximumEventAgeInSeconds": 3600}})
    firings = _advance(own_cloud, 25 * 3600)
    by = {name: [f["status"] for f in firings if f["schedule"] == name] for name in ("denied", "untrusted")}
    assert by == {"denied": ["retrying", "retrying", "dropped"], "untrusted": ["retrying", "retrying", "dropped"]}
    denied = next(f for f in firings if f["schedule"] == "denied")
    assert "is not authorized to perform: lambda:InvokeFunction" in denied["error"]
    assert "assumed-role/sched-no-policy/" in denied["error"]
    untrusted = next(f for f in firings if f["schedule"] == "untrusted")
    assert "could not assume the execution role" in untrusted["error"] and "scheduler.amazonaws.com" in untrusted["error"]
    retries = [dt.datetime.strptime(f["time"], STAMP) for f in firings if f["schedule"] == "denied"]
    assert len(set(retries)) == 1, "each attempt carries the schedule's instant"
    assert _invocations(own_cloud, "sched-denied-fn") == []
    end = _now(own_cloud)
    cloudwatch = own_cloud.client("cloudwatch")

    def total(metric: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Scheduler", MetricName=metric, Dimensions=[{"Name": "ScheduleGroup", "Value": "default"}],
            StartTime=start - dt.timedelta(minutes=5),
            EndTime=end + dt.timedelta(minutes=5), Period=86400, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert {m: total(m) for m in ("InvocationAttemptCount", "TargetErrorCount", "InvocationDroppedCount")} == {
        "InvocationAttemptCount": 6, "TargetErrorCount": 6, "InvocationDroppedCount": 2}
    listed = cloudwatch.list_metrics(Namespace="AWS/Scheduler", MetricName="InvocationDroppedCount")["Metrics"]
    assert {len(m["Dimensions"]) for m in listed} == {0, 1}, "account-wide and per schedule group"
    assert not cloudwatch.list_metrics(Namespace="AWS/Scheduler", MetricName="InvocationsSentToDeadLetterCount")[
        "Metrics"], "a metric is sent only when it is not zero"


def test_a_retry_after_the_role_is_fixed_delivers(own_cloud):
    fn = create_function(own_cloud, "sched-fixed-fn", RECORD)
    role = _role(own_cloud, "sched-fixed-role", None)
    at = (_now(own_cloud) + dt.timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
    own_cloud.client("scheduler").create_schedule(
        Name="fixed", ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fn, "RoleArn": role, "Input": '{"n": "<aws.scheduler.attempt-number>"}'})
    firings = _advance(own_cloud, 3600 + 150)  # the attempt at the instant, and the first retry a minute on
    assert [f["status"] for f in firings] == ["retrying"] * 2, firings
    _role_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": fn}]}
    own_cloud.client("iam").put_role_policy(RoleName="sched-fixed-role", PolicyName="invoke",
                                            PolicyDocument=json.dumps(_role_policy))
    later = _advance(own_cloud, 3600)
    assert [f["status"] for f in later] == ["ok"], later
    assert later[0]["time"] == firings[0]["time"] == f"{at:%Y-%m-%dT%H:%M:%SZ}", "a retry carries the instant"
    assert json.loads(later[0]["result"]) == {"n": "3"}, "the third attempt (two minutes after the second) delivered"


def test_failed_events_go_to_the_dead_letter_queue(own_cloud):
    fn = create_function(own_cloud, "sched-dlq-fn", RECORD)
    sqs = own_cloud.client("sqs")
    url = sqs.create_queue(QueueName="sched-dlq")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = _role(own_cloud, "sched-dlq-role", None,
                 extra=[{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue}])
    own_cloud.client("lambda").delete_function(FunctionName="sched-dlq-fn")
    _advance_to(own_cloud, 12)  # 01:30 falls once in the next 25 h
    arn = own_cloud.client("scheduler").create_schedule(
        Name="to-dlq", ScheduleExpression="cron(30 1 * * ? *)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fn, "RoleArn": role, "Input": '{"x": 1}', "DeadLetterConfig": {"Arn": queue},
                "RetryPolicy": {"MaximumRetryAttempts": 0}})["ScheduleArn"]
    firings = _advance(own_cloud, 25 * 3600)
    assert [f["status"] for f in firings] == ["dead_lettered"], firings
    message = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert json.loads(message["Body"]) == {"x": 1}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["SCHEDULE_ARN"] == arn and attributes["TARGET_ARN"] == fn
    assert attributes["ERROR_CODE"] in ("AccessDeniedException", "ResourceNotFoundException")
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"


def test_one_time_schedule_fires_once_then_is_deleted_or_kept(own_cloud):
    fn = create_function(own_cloud, "sched-once-fn", RECORD)
    role = _role(own_cloud, "sched-once-role", fn)
    scheduler = own_cloud.client("scheduler")
    at = (_now(own_cloud) + dt.timedelta(hours=2)).replace(microsecond=0, tzinfo=None)
    for name, action in (("once-delete", "DELETE"), ("once-keep", "NONE")):
        scheduler.create_schedule(
            Name=name, ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})", ActionAfterCompletion=action,
            FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": fn, "RoleArn": role, "Input": f'"{name}"'})
    assert _advance(own_cloud, 3600) == []
    firings = _advance(own_cloud, 3 * 86400)
    assert sorted((f["schedule"], f["status"], f["time"]) for f in firings) == [
        ("once-delete", "ok", f"{at:%Y-%m-%dT%H:%M:%SZ}"), ("once-keep", "ok", f"{at:%Y-%m-%dT%H:%M:%SZ}")]
    names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    assert names == ["once-keep"]
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="once-delete")
    assert scheduler.get_schedule(Name="once-keep")["ActionAfterCompletion"] == "NONE"


def test_disabled_and_out_of_window_schedules_do_not_fire(own_cloud):
    fn = create_function(own_cloud, "sched-quiet-fn", RECORD)
    role = _role(own_cloud, "sched-quiet-role", fn)
    scheduler = own_cloud.client("scheduler")
    now = _now(own_cloud)
    common = {"FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": fn, "RoleArn": role}}
    scheduler.create_schedule(Name="disabled", ScheduleExpression="rate(1 hour)", State="DISABLED", **common)
    scheduler.create_schedule(Name="later", ScheduleExpression="rate(1 hour)", StartDate=now + dt.timedelta(days=3),
                              **common)
    scheduler.create_schedule(Name="ended", ScheduleExpression="cron(0 * * * ? *)",
                              EndDate=now + dt.timedelta(hours=2, minutes=30), ActionAfterCompletion="DELETE",
                              **common)
    firings = _advance(own_cloud, 26 * 3600)
    assert {f["schedule"] for f in firings} == {"ended"}
    assert len([f for f in firings if f["schedule"] == "ended"]) in (2, 3)  # the hours before EndDate
    names = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    assert names == {"disabled", "later"}, "a schedule past its EndDate is complete: DELETE deletes it"
    scheduler.update_schedule(Name="disabled", ScheduleExpression="rate(1 hour)", State="ENABLED", **common)
    assert {f["schedule"] for f in _advance(own_cloud, 3600)} == {"disabled"}
    assert _invocations(own_cloud, "sched-quiet-fn")


def test_schedules_survive_a_restart(tmp_path):
    home = tmp_path / "home"
    cloud = start_test_cloud(home)
    try:
        fn = create_function(cloud, "sched-kept-fn", RECORD)
        role = _role(cloud, "sched-kept-role", fn)
        scheduler = cloud.client("scheduler")
        scheduler.create_schedule(Name="kept", ScheduleExpression="cron(0 3 * * ? *)",
                                  FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": fn, "RoleArn": role, "Input": '{"kept": true}'})
        at = (_now(cloud) + dt.timedelta(days=2)).replace(microsecond=0, tzinfo=None)
        scheduler.create_schedule(Name="kept-once", ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
                                  ActionAfterCompletion="DELETE", FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": fn, "RoleArn": role})
        scheduler.create_schedule(Name="late", ScheduleExpression="rate(12 hours)", FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": fn, "RoleArn": role, "Input": '"<aws.scheduler.scheduled-time>"'})
        assert control.cloud_request("GET", "/_labkit/health", home=home)["services"]["scheduler"]["schedules"] == 3
        lab_offset = _now(cloud) - dt.datetime.now(dt.timezone.utc)
    finally:
        stop_test_cloud(cloud)
    # as if the cloud had been down 30 hours: "late" was next due 30 hours ago (lab time)
    path = home / "state" / "services" / "scheduler.json"
    saved = json.loads(path.read_text())
    late = next(arn for arn in saved["entries"] if arn.endswith("/late"))
    missed = (dt.datetime.now(dt.timezone.utc) + lab_offset - dt.timedelta(hours=30)).replace(microsecond=0)
    saved["entries"][late].update(anchor=missed.isoformat(), next_due=missed.isoformat())
    path.write_text(json.dumps(saved))
    cloud = start_test_cloud(home)
    try:
        scheduler = cloud.client("scheduler")
        assert {s["Name"] for s in scheduler.list_schedules()["Schedules"]} == {"kept", "kept-once", "late"}
        instants = [(missed + dt.timedelta(hours=12 * n)).strftime(STAMP) for n in range(3)]
        history = [f for f in control.scheduler_history(home) if f["schedule"] == "late"]
        for _ in range(30):  # the loop delivers the young missed instants within a second or two
            if len([f for f in history if f["status"] == "ok"]) >= 2:
                break
            time.sleep(1)
            history = [f for f in control.scheduler_history(home) if f["schedule"] == "late"]
        assert [(f["time"], f["status"]) for f in history] == [
            (instants[0], "dropped"), (instants[1], "ok"), (instants[2], "ok")], history
        assert [json.loads(f["result"]) for f in history[1:]] == instants[1:], "each late event has its own time"
        firings = _advance(cloud, 3 * 86400)
        kept = sorted(f["schedule"] for f in firings if f["status"] == "ok" and f["schedule"] != "late")
        assert kept == ["kept", "kept", "kept", "kept-once"]
        assert all(json.loads(f["result"]) == {"kept": True} for f in firings if f["schedule"] == "kept")
        assert sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"]) == ["kept", "late"]
    finally:
        stop_test_cloud(cloud)
    cloud = start_test_cloud(home)
    try:
        names = sorted(s["Name"] for s in cloud.client("scheduler").list_schedules()["Schedules"])
        assert names == ["kept", "late"], "the deletion by ActionAfterCompletion is kept too"
    finally:
        stop_test_cloud(cloud)

"""EventBridge schedules fire on the lab clock, only with the Lambda permission, only when enabled."""
from __future__ import annotations

import datetime as dt
import json

from tests.helpers.lambdas import create_function

RECORD = "def lambda_handler(event, context):\n    return event\n"


def _rule(cloud, name: str, expression: str, fn_arn: str, permit: bool = True, state: str = "ENABLED") -> str:
    events = cloud.client("events")
    rule_arn = events.put_rule(Name=name, ScheduleExpression=expression, State=state)["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "target", "Arn": fn_arn}])
    if permit:
        cloud.client("lambda").add_permission(FunctionName=fn_arn, StatementId=f"events-{name}",
                                              Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                              SourceArn=rule_arn)
    return rule_arn


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def test_rate_rule_fires_once_per_day_with_scheduled_event_payload(own_cloud):
    fn = create_function(own_cloud, "daily-fn", RECORD)
    rule_arn = _rule(own_cloud, "every-day", "rate(1 day)", fn)
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 72 * 3600})["firings"]
    assert [f["status"] for f in firings] == ["ok", "ok", "ok"]
    times = [_parse(f["time"]) for f in firings]
    assert [b - a for a, b in zip(times, times[1:])] == [dt.timedelta(days=1)] * 2
    event = json.loads(firings[0]["result"])
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [rule_arn] and event["time"] == firings[0]["time"] and event["detail"] == {}
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def test_cron_rule_fires_at_midnight_utc_and_input_replaces_the_event(own_cloud):
    fn = create_function(own_cloud, "cron-fn", RECORD)
    _rule(own_cloud, "midnight", "cron(0 0 * * ? *)", fn)
    own_cloud.client("events").put_targets(Rule="midnight", Targets=[{"Id": "target", "Arn": fn,
                                                                      "Input": '{"custom": true}'}])
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 48 * 3600})["firings"]
    assert len(firings) == 2
    assert all(_parse(f["time"]).hour == 0 and _parse(f["time"]).minute == 0 for f in firings)
    assert json.loads(firings[0]["result"]) == {"custom": True}


def test_disabled_rule_and_rule_without_permission_fire_nothing(own_cloud):
    fn = create_function(own_cloud, "quiet-fn", RECORD)
    _rule(own_cloud, "disabled", "rate(1 hour)", fn, state="DISABLED")
    _rule(own_cloud, "no-permission", "rate(1 day)", fn, permit=False)
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 25 * 3600})["firings"]
    assert [f["rule"] for f in firings] == ["no-permission"]
    assert firings[0]["status"] == "denied" and "add_permission" in firings[0]["error"]
    logs = own_cloud.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/quiet-fn")["logGroups"]
    assert logs == []  # the function never ran
    metrics = own_cloud.client("cloudwatch").list_metrics(Namespace="AWS/Events", MetricName="FailedInvocations")
    assert metrics["Metrics"], "a denied delivery is counted where AWS users look for it"


def test_removed_target_does_not_fire(own_cloud):
    fn = create_function(own_cloud, "removed-fn", RECORD)
    _rule(own_cloud, "gone", "rate(1 day)", fn)
    own_cloud.client("events").remove_targets(Rule="gone", Ids=["target"])
    assert own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 49 * 3600})["firings"] == []


def test_clock_reports_lab_time(own_cloud):
    before = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 3600})
    after = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    assert dt.timedelta(hours=1) <= after - before < dt.timedelta(hours=1, minutes=1)


def test_permission_for_another_rule_does_not_let_this_rule_invoke(own_cloud):
    fn = create_function(own_cloud, "guarded-fn", RECORD)
    other = own_cloud.client("events").put_rule(Name="other-rule", ScheduleExpression="rate(7 days)")["RuleArn"]
    lam = own_cloud.client("lambda")
    lam.add_permission(FunctionName=fn, StatementId="other", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=other)
    rule_arn = _rule(own_cloud, "this-rule", "rate(1 day)", fn, permit=False)
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 25 * 3600})["firings"]
    assert [(f["rule"], f["status"]) for f in firings] == [("this-rule", "denied")]
    lam.add_permission(FunctionName=fn, StatementId="this", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 24 * 3600})["firings"]
    assert [(f["rule"], f["status"]) for f in firings] == [("this-rule", "ok")]


def test_each_firing_counts_triggered_rules_invocations_and_failed_invocations(own_cloud):
    """AWS/Events per rule (EventBridge User Guide, "Monitoring"): TriggeredRules per firing, Invocations per target
    invoked (failed ones included), FailedInvocations only for a delivery that failed; a function that ran and
    raised was delivered (its error is AWS/Lambda's)."""
    ok = create_function(own_cloud, "metric-ok-fn", RECORD)
    failing = create_function(own_cloud, "metric-raise-fn", "def lambda_handler(e, c):\n    raise ValueError('no')\n")
    _rule(own_cloud, "metric-ok", "rate(1 day)", ok)
    _rule(own_cloud, "metric-raises", "rate(1 day)", failing)
    _rule(own_cloud, "metric-denied", "rate(1 day)", ok, permit=False)
    start = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 3 * 86400 + 60})["firings"]
    assert sorted({(f["rule"], f["status"]) for f in firings}) == [
        ("metric-denied", "denied"), ("metric-ok", "ok"), ("metric-raises", "function_error")]
    end = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    cloudwatch = own_cloud.client("cloudwatch")

    def total(metric: str, rule: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Events", MetricName=metric, Dimensions=[{"Name": "RuleName", "Value": rule}],
            StartTime=start - dt.timedelta(minutes=5), EndTime=end + dt.timedelta(minutes=5), Period=86400,
            Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    counts = {rule: {metric: total(metric, rule) for metric in ("TriggeredRules", "Invocations", "FailedInvocations")}
              for rule in ("metric-ok", "metric-raises", "metric-denied")}
    assert counts == {"metric-ok": {"TriggeredRules": 3, "Invocations": 3, "FailedInvocations": 0},
                      "metric-raises": {"TriggeredRules": 3, "Invocations": 3, "FailedInvocations": 0},
                      "metric-denied": {"TriggeredRules": 3, "Invocations": 3, "FailedInvocations": 3}}
    # a metric is sent only when it is not zero: no FailedInvocations at all for the rules that delivered
    listed = cloudwatch.list_metrics(Namespace="AWS/Events", MetricName="FailedInvocations")["Metrics"]
    assert {d["Value"] for m in listed for d in m["Dimensions"]} == {"metric-denied"}


STAMPS = ("import datetime\n"
          "def lambda_handler(event, context):\n"
          "    print('run for', event['time'])\n"
          "    return {'event': event['time'], 'own clock': datetime.datetime.now(datetime.timezone.utc).isoformat()}\n")


def test_each_firing_runs_at_its_instant_on_the_lab_clock(own_cloud):
    """Two 12-hourly firings in one 24 h advance: each run's log lines and its own clock say its instant (they both
    said the end of the advance, where the clock had been moved before firing)."""
    fn = create_function(own_cloud, "stamped-fn", STAMPS)
    _rule(own_cloud, "twice-a-day", "rate(12 hours)", fn)
    before = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    firings = own_cloud.request("POST", "/_labkit/clock/advance", {"seconds": 24 * 3600})["firings"]
    after = dt.datetime.fromisoformat(own_cloud.request("GET", "/_labkit/clock")["now"])
    assert [f["status"] for f in firings] == ["ok", "ok"]
    assert dt.timedelta(hours=24) <= after - before < dt.timedelta(hours=24, minutes=2), "the offset grows by 24 h"
    instants = [_parse(f["time"]).replace(tzinfo=dt.timezone.utc) for f in firings]
    own_clocks = [dt.datetime.fromisoformat(json.loads(f["result"])["own clock"]) for f in firings]
    events = own_cloud.client("logs").filter_log_events(logGroupName="/aws/lambda/stamped-fn")["events"]
    printed = sorted(dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.timezone.utc)
                     for e in events if e["message"].startswith("run for"))
    for instant, logged, own in zip(instants, printed, own_clocks, strict=True):
        assert dt.timedelta(0) <= logged - instant < dt.timedelta(minutes=1), (instant, logged)
        assert dt.timedelta(0) <= own - instant < dt.timedelta(minutes=1), (instant, own)

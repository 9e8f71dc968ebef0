""""Your turn" answers judged by what they do, not by their words: a command's output, a lifecycle rule's reach,
a schedule's firing instants (issue 27: grading too loose and too strict)."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from labkit import schedule, schedule_expressions
from labkit.task_answers import _app_requirements, expires_reports, journal_output, pip_list_output, uname_output

LAB = SimpleNamespace(target=SimpleNamespace(instance_kernel_note=" (this computer's kernel)"))
UNAME = "Linux ip-10-0-1-23 6.5.0-1014-aws #14~22.04.1-Ubuntu SMP Thu Feb 15 15:27:06 UTC 2024 x86_64 x86_64 x86_64 GNU/Linux\n"
NOW = dt.datetime(2026, 12, 1, 17, 7, tzinfo=dt.timezone.utc)  # a Tuesday
TWELVE = dt.timedelta(hours=12)


def test_uname_is_judged_by_its_line_not_by_the_word():
    passed, detail = uname_output(UNAME, LAB)
    assert passed and "6.5.0-1014-aws" in detail and "this computer's kernel" in detail
    assert uname_output("Linux host 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 GNU/Linux", LAB)[0]
    for output in ("uname\n", "uname -a\n", "Linux\n", ""):
        passed, detail = uname_output(output, LAB)
        assert not passed and "not uname -a's line" in detail, output


def _pip_list() -> str:
    rows = [("blinker", "1.9.0"), *((name, version) for name, version in _app_requirements().items()),
            ("Werkzeug", "3.1.9")]
    return "Package    Version\n---------- -------\n" + "".join(f"{n:<10} {v}\n" for n, v in rows)


def test_pip_list_must_list_the_apps_pinned_packages():
    pins = _app_requirements()
    assert set(pins) >= {"flask", "boto3", "pymysql", "hypercorn"}
    passed, detail = pip_list_output(_pip_list(), LAB)
    assert passed and f"flask {pins['flask']}" in detail
    freeze = "".join(f"{name.upper()}=={version}\n" for name, version in pins.items())  # pip freeze, any case
    assert pip_list_output(freeze, LAB)[0]


@pytest.mark.parametrize("output,reason", [
    ("pip\nlist\n", "not pip's list"),                                    # echo pip; echo list
    ("", "not pip's list"),
    ("Package Version\n------- -------\npip 23.0.1\nsetuptools 65.5.0\n", "but not the app's"),  # the system's pip
])
def test_pip_list_refuses_words_and_another_environment(output, reason):
    passed, detail = pip_list_output(output, LAB)
    assert not passed and reason in detail, detail


def test_the_journal_must_hold_the_apps_log_lines():
    local = ("[2026-12-04 17:04:23 +0000] [19797] [INFO] Running on http://0.0.0.0:5000 (CTRL + C to quit)\n"
             "[2026-12-04 17:04:25 +0000] [19797] [INFO] 127.0.0.1:43180 - - [04/Dec/2026:17:04:25 +0000] "
             "\"GET /healthz 1.1\" 200 45 \"-\" \"Python-urllib/3.11\"\n")
    passed, detail = journal_output(local, LAB)
    assert passed and "2 line(s)" in detail and "Running on" in detail
    on_aws = ("Dec 04 17:04:21 ip-10-0-1-23 systemd[1]: Started Orders Lab Flask app.\n"
              "Dec 04 17:04:23 ip-10-0-1-23 hypercorn[812]: [2026-12-04 17:04:23 +0000] [812] [INFO] Running on "
              "http://0.0.0.0:5000 (CTRL + C to quit)\n")
    assert journal_output(on_aws, LAB)[0]
    for output in ("journalctl\n", "-- No entries --\n", ""):
        passed, detail = journal_output(output, LAB)
        assert not passed and "no line of the orders-app service's log" in detail


def _rule(prefix=None, status="Enabled", days=90, **filter_extra):
    rule = {"ID": "r", "Status": status, "Expiration": {"Days": days} if days is not None else {}}
    if prefix is not None or filter_extra:
        rule["Filter"] = {**({"Prefix": prefix} if prefix is not None else {}), **filter_extra}
    return rule


def test_a_lifecycle_rule_on_reports_with_or_without_the_slash_passes():
    assert expires_reports(_rule("reports/")) == (True, "objects under reports/ expire after 90 days")
    passed, detail = expires_reports(_rule("reports"))
    assert passed and "without the slash" in detail and "reports-old.csv" in detail
    assert expires_reports({"ID": "old-form", "Prefix": "reports/", "Status": "Enabled",
                            "Expiration": {"Days": 30}})[0]
    assert expires_reports(_rule(And={"Prefix": "reports/"}))[0]


@pytest.mark.parametrize("rule,reason", [
    (_rule("reports/", status="Disabled"), "Status is 'Disabled'"),
    (_rule(""), "expires every object in the bucket, not only the reports"),
    (_rule(), "expires every object in the bucket"),                       # Filter absent: the old form, no prefix
    (_rule("rep"), "every key that starts with 'rep'"),
    (_rule("reports/2026/"), "matches only keys that start with 'reports/2026/'"),
    (_rule("Reports/"), "matches only keys that start with 'Reports/'"),    # S3 keys are case-sensitive
    (_rule(And={"Prefix": "reports/", "Tags": [{"Key": "keep", "Value": "no"}]}), "only to objects tagged keep=no"),
    (_rule(Tag={"Key": "kind", "Value": "report"}), "only to objects tagged kind=report"),
    (_rule(And={"Prefix": "reports/", "ObjectSizeGreaterThan": 1000}), "larger than 1000 bytes"),
    (_rule("reports/", days=400), "after 400 days, more than a year"),
    ({**_rule("reports/", days=None), "Expiration": {"Date": "2027-01-01T00:00:00Z"}}, "on one date"),
    (_rule("reports/", days=None), "no Expiration Days"),
])
def test_a_lifecycle_rule_that_misses_reports_says_precisely_why(rule, reason):
    passed, detail = expires_reports(rule)
    assert not passed and reason in detail, detail


@pytest.mark.parametrize("expression", ["rate(12 hours)", "rate(720 minutes)", "cron(0 0/12 * * ? *)",
                                        "cron(0 */12 * * ? *)", "cron(0 0,12 * * ? *)", "cron(30 3,15 * * ? *)",
                                        "cron(0 0/12 ? * * *)", "cron(0 0/12 * * ? 2026-2099)"])
def test_every_spelling_of_every_12_hours_fires_every_12_hours(expression):
    passed, detail = schedule_expressions.fires_every(expression, TWELVE, NOW)
    assert passed and detail == f"{expression} fires every 12 h"
    assert schedule.runs_at_least_daily(expression, NOW)


@pytest.mark.parametrize("expression,reason", [
    ("rate(1 day)", "fires every 24 h"),
    ("rate(12 minutes)", "fires every 12 min"),
    ("cron(0 0/6 * * ? *)", "fires 6 h apart"),
    ("cron(0 0,13 * * ? *)", "fires 13 h apart"),
    ("cron(0 18 * * ? *)", "fires 24 h apart"),
    ("cron(0 12 * * ? *)", "first fires at 2026-12-02 12:00 UTC, 18.88 h from now"),
    ("cron(0 0/12 ? * MON-FRI *)", "until 2026-12-04 12:00 UTC, then 60 h later"),
    ("cron(0 0/12 * 1-11 ? *)", "first fires at 2027-01-01 00:00 UTC"),
    ("cron(0 0/12 * * ? 2026)", "for the last time at 2026-12-31 12:00 UTC"),
    ("cron(0 0/12 * * ?)", "six fields"),
    ("every 12 hours", "not a schedule expression"),
])
def test_a_schedule_that_does_not_fire_every_12_hours_says_what_it_does(expression, reason):
    passed, detail = schedule_expressions.fires_every(expression, TWELVE, NOW)
    assert not passed and reason in detail, detail


@pytest.mark.parametrize("expression,daily", [
    ("rate(1 day)", True), ("rate(2 days)", False), ("cron(0 3 * * ? *)", True), ("cron(0 3 ? * MON-FRI *)", False),
    ("cron(0 0/12 * * ? 2026)", False), ("nonsense", False), (None, False), ("", False)])
def test_runs_at_least_daily_judges_by_the_firings(expression, daily):
    assert schedule.runs_at_least_daily(expression, NOW) is daily


def test_the_schedulers_next_after_is_the_same_reading():
    """The local cloud fires a rule at the instants the checks judge (one function, moved out of the scheduler)."""
    from labkit.schedule_expressions import next_after

    assert next_after("rate(12 hours)", NOW) == NOW + TWELVE
    assert next_after("cron(0 0/12 * * ? *)", NOW) == dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    assert next_after("cron(15 10 ? * 2 *)", NOW) == dt.datetime(2026, 12, 7, 10, 15, tzinfo=dt.timezone.utc)  # MON
    assert next_after("cron(0 0/12 * * ? 2028)", NOW) == dt.datetime(2028, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError, match="never due again"):
        next_after("cron(0 0/12 * * ? 2025)", NOW)

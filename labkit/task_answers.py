"""What a "Your turn" answer must show, beyond a resource's settings: the output of a command the student ran on
the instance (not the command's words: ``echo pip list`` lists nothing), and a lifecycle rule that really expires
the reports. :mod:`labkit.tasks` uses these; each returns (passed, what the cloud shows and precisely why not).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.lookups import describe_instance
from labkit.session import Lab

PROJECT = Path(__file__).resolve().parents[1]
REPORTS_PREFIX = "reports/"  # step 11: where the report function writes


def student_commands(lab: Lab) -> tuple[str | None, list[dict[str, Any]]]:
    """The lab's instance id and the commands the student sent it, newest first (labkit's own commands, whose
    comment starts with "Orders Lab", do not count)."""
    instance = describe_instance(lab)
    if instance is None:
        return None, []
    sent = [command for page in lab.client("ssm").get_paginator("list_commands").paginate(
                InstanceId=instance["InstanceId"])
            for command in page["Commands"] if not command.get("Comment", "").startswith("Orders Lab")]
    return instance["InstanceId"], sorted(sent, key=lambda c: c.get("RequestedDateTime", 0), reverse=True)


OutputJudge = Callable[[str, Lab], "tuple[bool, str]"]
PLUGIN_OUTPUT = 2500  # ListCommandInvocations gives the first 2,500 characters of each command's output


def student_invocations(lab: Lab) -> tuple[str | None, list[dict[str, Any]]]:
    """The lab's instance id and, newest first, the invocations of the commands the student sent it, each with
    its output (ListCommandInvocations with Details: one request for 50 commands); labkit's own do not count."""
    instance = describe_instance(lab)
    if instance is None:
        return None, []
    pages = lab.client("ssm").get_paginator("list_command_invocations").paginate(
        InstanceId=instance["InstanceId"], Details=True)
    sent = [invocation for page in pages for invocation in page["CommandInvocations"]
            if not invocation.get("Comment", "").startswith("Orders Lab")]
    return instance["InstanceId"], sorted(sent, key=lambda i: i.get("RequestedDateTime", 0), reverse=True)


def command_verdict(lab: Lab, invocation: dict[str, Any], judge: OutputJudge) -> tuple[bool, str]:
    """Whether one invocation succeeded and printed what ``judge`` recognises, and what it printed if not."""
    if invocation.get("Status") != "Success":
        return False, f"it ended {invocation.get('Status')}"
    output = "".join(plugin.get("Output", "") for plugin in invocation.get("CommandPlugins", []))
    passed, detail = judge(output, lab)
    if not passed and len(output) >= PLUGIN_OUTPUT - 100:  # cut short in the list: read all of it
        output = lab.client("ssm").get_command_invocation(
            CommandId=invocation["CommandId"], InstanceId=invocation["InstanceId"]).get("StandardOutputContent", "")
        passed, detail = judge(output, lab)
    return passed, detail if passed else f"it printed {_quoted(output)}: {detail}"


def output_on_instance(lab: Lab, judge: OutputJudge, what: str) -> tuple[bool, str]:
    """One of the student's SSM commands on the instance succeeded and printed what ``judge`` recognises: the
    command's output is what counts, not its words."""
    instance_id, sent = student_invocations(lab)
    if instance_id is None:
        return False, "the lab has no instance yet"
    if not sent:
        return False, f"you have sent {instance_id} no command yet"
    newest = ""
    for invocation in sent:
        passed, detail = command_verdict(lab, invocation, judge)
        if passed:
            return True, f"your command ran on {instance_id}: {detail}"
        newest = newest or detail
    when = sent[0].get("RequestedDateTime")
    label = f"command {sent[0]['CommandId'][:8]}" + (
        f", sent {when.astimezone(dt.timezone.utc):%H:%M:%S} UTC" if isinstance(when, dt.datetime) else "")
    return False, f"none of your {len(sent)} command(s) on {instance_id} printed {what}; the newest ({label}): {newest}"


def _quoted(output: str, limit: int = 80) -> str:
    text = " ".join(output.split())
    return repr(text if len(text) <= limit else text[:limit] + "...") if text else "nothing"


UNAME = re.compile(r"^Linux \S+ \d+\.\d+\S* #\S+ .* GNU/Linux$")


def uname_output(output: str, lab: Lab) -> tuple[bool, str]:
    """``uname -a``'s line: kernel name, host name, release, ``#build``, ..., ``GNU/Linux``."""
    line = next((line.strip() for line in output.splitlines() if UNAME.match(line.strip())), None)
    if line is None:
        return False, "that is not uname -a's line (Linux <host> <release> #<build> ... GNU/Linux)"
    release = line.split()[2]
    return True, f"kernel {release}{lab.target.instance_kernel_note}"


def _app_requirements() -> dict[str, str]:
    """The app's pinned requirements (flask_app/requirements.txt): normalised name -> version."""
    pins = {}
    for line in (PROJECT / "flask_app" / "requirements.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name and version:
            pins[_package(name)] = version.strip()
    return pins


def _package(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_list_output(output: str, lab: Lab) -> tuple[bool, str]:
    """``pip list`` (a Package/Version table) or ``pip freeze`` (name==version) of the app's environment: every
    package step 7 installed, at the version it pinned."""
    listed = {}
    for line in output.splitlines():
        words = line.replace("==", " ").split()
        if len(words) >= 2 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", words[0]) and re.match(r"\d", words[1]):
            listed[_package(words[0])] = words[1]
    pins = _app_requirements()
    if not listed:
        return False, "that is not pip's list of packages (Package Version rows, or name==version lines)"
    missing = [f"{name} {version}" for name, version in pins.items() if listed.get(name) != version]
    if missing:
        return False, (f"it lists {len(listed)} packages but not the app's {', '.join(missing)}: list the app's own "
                       "virtual environment (~/orders-app/venv/bin/pip list)")
    return True, f"pip listed {len(listed)} packages, among them {', '.join(f'{n} {v}' for n, v in pins.items())}"


# a line the app's service writes: Hypercorn's own ("[2026-01-05 12:00:00 +0000] [1234] [INFO] Running on ...")
# or systemd's about the unit ("Started Orders Lab Flask app.")
APP_LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] |Orders Lab Flask app")


def journal_output(output: str, lab: Lab) -> tuple[bool, str]:
    """Lines of the orders-app unit's log (Hypercorn's, or systemd's about the unit)."""
    lines = [line for line in output.splitlines() if APP_LOG_LINE.search(line)]
    if not lines:
        return False, "no line of the orders-app service's log (journalctl -u orders-app)"
    listening = next((line for line in lines if "Running on" in line), None)
    return True, (f"{len(lines)} line(s) of the app's log"
                  + (f", among them where it started listening: {_quoted(listening, 120)}" if listening else ""))


def expires_reports(rule: dict[str, Any]) -> tuple[bool, str]:
    """Whether one lifecycle rule expires every object under reports/ within a year, and precisely why not.

    S3 matches a prefix as plain text: ``reports`` covers every key under ``reports/`` (and keys such as
    ``reports-old.csv`` too, which the lab's bucket does not hold), so it is accepted; a filter on tags or sizes
    leaves other reports untouched, and a shorter prefix expires more than the reports."""
    if rule.get("Status") != "Enabled":
        return False, f"its Status is {rule.get('Status')!r}: a rule does nothing until it is 'Enabled'"
    found = rule.get("Filter")
    if found is None:  # the older form: Prefix beside the rule's other keys
        found = {"Prefix": rule.get("Prefix", "")}
    narrowed = found.get("And", found)
    prefix = narrowed.get("Prefix", "")
    limits = [f"tagged {t['Key']}={t['Value']}" for t in narrowed.get("Tags", [])]
    limits += [f"tagged {found['Tag']['Key']}={found['Tag']['Value']}"] if "Tag" in found else []
    limits += [f"larger than {narrowed['ObjectSizeGreaterThan']} bytes"] if "ObjectSizeGreaterThan" in narrowed else []
    limits += [f"smaller than {narrowed['ObjectSizeLessThan']} bytes"] if "ObjectSizeLessThan" in narrowed else []
    if limits:
        return False, (f"it applies only to objects {' and '.join(limits)}: the reports carry no such tag or size "
                       "limit, so most of them would never expire; filter on the prefix alone")
    if not REPORTS_PREFIX.startswith(prefix):
        return False, (f"its prefix {prefix!r} matches only keys that start with {prefix!r}: the reports are under "
                       f"{REPORTS_PREFIX!r}, so they would never expire")
    if len(prefix) < len(REPORTS_PREFIX.rstrip("/")):
        covered = "every object in the bucket" if not prefix else f"every key that starts with {prefix!r}"
        return False, (f"its prefix {prefix!r} expires {covered}, not only the reports: make it {REPORTS_PREFIX!r}")
    expiration = rule.get("Expiration", {})
    days = expiration.get("Days")
    if days is None:
        if "Date" in expiration:
            return False, (f"it expires everything on one date ({expiration['Date']}), not each report a number of "
                           "days after it was written: use Expiration Days")
        return False, "it has no Expiration Days (it expires nothing under reports/)"
    if not 1 <= days <= 365:
        return False, f"it expires objects after {days} days, more than a year"
    note = "" if prefix == REPORTS_PREFIX else (f" (prefix {prefix!r} without the slash matches every key under "
                                                f"{REPORTS_PREFIX} too, and also keys such as {prefix}-old.csv)")
    return True, f"objects under {REPORTS_PREFIX} expire after {days} days{note}"

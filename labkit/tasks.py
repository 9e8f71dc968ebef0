""""Your turn": one short task per step (01-13) that the student does with boto3 or the AWS CLI, and its check.

Each check asks the cloud (never the notebook's variables) whether the task is done, so a task done in the
console or a terminal counts too. ``task_check(step, lab)`` answers passed / not yet with a hint;
``tasks_frame(lab)`` is every task's answer, for the lab report.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from labkit import functions, myip, names, records, tasks_history
from labkit.errors import GONE, LabkitError, error_code
from labkit.lookups import describe_db_instance
from labkit.schedule_expressions import fires_every
from labkit.session import Lab
from labkit.task_answers import (
    expires_reports,
    journal_output,
    output_on_instance,
    pip_list_output,
    student_commands,
    uname_output,
)

MIN_AMOUNT = Decimal("1.00")   # step 10: the validator's new minimum
SCHEDULE_12H = "rate(12 hours)"  # the hint's spelling; any schedule that fires every 12 hours passes
EVERY_12_HOURS = dt.timedelta(hours=12)
# the tag each tagging task asks for: (key, value); None: any value (the student's name)
TAGS = {1: ("owner", None), 2: ("tier", "data")}
BACKUP_DAYS = 7                # step 4: how long RDS keeps the automated backups


class TaskNotDone(LabkitError):
    """The reference solution ran (``solutions = True``) but the task's check still says "not yet"."""


@dataclass(frozen=True, repr=False)
class TaskResult:
    step: int
    task: str
    passed: bool
    detail: str
    hint: str

    def _repr_markdown_(self) -> str:
        if self.passed:
            return f"**Your turn, step {self.step}: passed** ✅ — {self.detail}"
        return f"**Your turn, step {self.step}: not yet** ⏳ — {self.detail}  \n*Hint:* {self.hint}"

    def __str__(self) -> str:
        if self.passed:
            return f"Your turn, step {self.step}: passed: {self.detail}"
        return f"Your turn, step {self.step}: not yet: {self.detail}\n  Hint: {self.hint}"

    __repr__ = __str__


Check = Callable[[Lab], "tuple[bool, str]"]


@dataclass(frozen=True)
class Task:
    step: int
    title: str
    hint: str
    check: Check


# ---- the checks: (passed, what the cloud shows) ------------------------------------------------------------

def _tag(tags: list[dict[str, Any]] | None, key: str) -> str | None:
    return next((t["Value"] for t in tags or [] if t["Key"] == key), None)


def _vpc_owner(lab: Lab) -> tuple[bool, str]:
    ec2 = lab.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    if not vpcs:
        return False, "the lab has no VPC yet (run this notebook's cells above)"
    subnets = ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]
    items = [(v["VpcId"], v.get("Tags")) for v in vpcs] + [(s["SubnetId"], s.get("Tags")) for s in subnets]
    key = TAGS[1][0]
    missing = [rid for rid, tags in items if not _tag(tags, key)]
    if missing:
        return False, f"{len(missing)} of {len(items)} (VPC and subnets) carry no {key} tag: {', '.join(missing)}"
    return True, f"the VPC and its {len(subnets)} subnets carry {key}={_tag(vpcs[0].get('Tags'), key)}"


def _rds_tag(arn: str, key: str, lab: Lab) -> str | None:
    return _tag(lab.client("rds").list_tags_for_resource(ResourceName=arn).get("TagList"), key)


def _subnet_group_tier(lab: Lab) -> tuple[bool, str]:
    try:
        group = lab.client("rds").describe_db_subnet_groups(DBSubnetGroupName=names.DB_SUBNET_GROUP)["DBSubnetGroups"][0]
    except ClientError as exc:
        if error_code(exc) in GONE:
            return False, f"the subnet group {names.DB_SUBNET_GROUP} does not exist yet"
        raise
    key, wanted = TAGS[2]
    value = _rds_tag(group["DBSubnetGroupArn"], key, lab)
    return value == wanted, f"the subnet group's {key} tag is {value!r}"


def _https_from_one_address(lab: Lab) -> tuple[bool, str]:
    groups = lab.client("ec2").describe_security_groups(Filters=[
        *lab.tag_filter(), {"Name": "group-name", "Values": [names.SG_NAMES["ec2"]]}])["SecurityGroups"]
    if not groups:
        return False, f"{names.SG_NAMES['ec2']} does not exist yet"
    rules = [p for p in groups[0]["IpPermissions"]  # every rule that lets 443 in: all traffic, or a range with it
             if p.get("IpProtocol") == "-1" or p.get("FromPort", 0) <= 443 <= p.get("ToPort", -1)]
    sources = [r["CidrIp"] for p in rules for r in p.get("IpRanges", [])]
    others = [r["CidrIpv6"] for p in rules for r in p.get("Ipv6Ranges", [])]
    others += [g["GroupId"] for p in rules for g in p.get("UserIdGroupPairs", [])]
    if not rules:
        return False, f"{names.SG_NAMES['ec2']} has no rule for port 443"
    wide = [c for c in sources if not c.endswith("/32")] + others
    if wide or len(set(sources)) > 1:
        return False, f"443 is open to more than one address: {', '.join(wide or sources)}"
    if any(p.get("IpProtocol") == "-1" or p.get("FromPort") != p.get("ToPort") for p in rules):
        return False, "a rule opens more ports than 443: open 443 alone"
    address, why = myip.lookup(lab)
    if address is None:
        return False, (f"443 is open to {sources[0]} only, but your own address is unknown, so the check cannot "
                       f"tell whether it is yours: {why}")
    if sources[0] != f"{address}/32":
        return False, (f"443 is open to {sources[0]}, which is not your address: labkit.myip.your_address(lab) is "
                       f"{address}, so the rule's source is {address}/32")
    return True, f"443 is open to {sources[0]} only: your own address"


def _backups_kept(lab: Lab) -> tuple[bool, str]:
    db = describe_db_instance(lab)
    if db is None:
        return False, "the database does not exist yet (run this notebook's cells above)"
    days = db.get("BackupRetentionPeriod", 0)
    return days >= BACKUP_DAYS, f"automated backups are kept {days} day{'s' if days != 1 else ''}"


def _ran_on_instance(lab: Lab, *alternatives: tuple[str, ...]) -> tuple[bool, str]:
    """A successful SSM Run Command on the lab's instance whose commands hold all words of one alternative."""
    instance_id, sent = student_commands(lab)
    if instance_id is None:
        return False, "the lab has no instance yet"
    found = [c["Status"] for c in sent
             if any(all(word in "\n".join(c.get("Parameters", {}).get("commands", [])) for word in words)
                    for words in alternatives)]
    if "Success" in found:
        return True, f"your command ran on {instance_id} (status Success)"
    if found:
        return False, f"your command reached {instance_id} but ended {found[0]}"
    return False, f"no such command was sent to {instance_id} yet"


def _db_port_from_instance(lab: Lab) -> tuple[bool, str]:
    db = describe_db_instance(lab)
    if db is None or "Endpoint" not in db:
        return False, "the database has no endpoint yet"
    return _ran_on_instance(lab, (db["Endpoint"]["Address"], str(db["Endpoint"]["Port"])))


def _minimum_amount(lab: Lab) -> tuple[bool, str]:
    lam = lab.client("lambda")
    try:
        env = lam.get_function_configuration(FunctionName=names.VALIDATOR_FUNCTION).get("Environment", {})
    except ClientError as exc:
        if error_code(exc) in GONE:
            return False, f"{names.VALIDATOR_FUNCTION} does not exist yet"
        raise
    variables = env.get("Variables", {})
    if "DB_SECRET_NAME" not in variables:
        return False, "DB_SECRET_NAME is gone: Environment replaces every variable, so send the old ones too"
    if not variables.get("MIN_ORDER_AMOUNT"):
        return False, "MIN_ORDER_AMOUNT is not set"
    try:
        minimum = Decimal(variables["MIN_ORDER_AMOUNT"])
    except InvalidOperation:
        return False, f"MIN_ORDER_AMOUNT is {variables.get('MIN_ORDER_AMOUNT')!r}, not {MIN_AMOUNT}"
    if minimum != MIN_AMOUNT:
        return False, f"MIN_ORDER_AMOUNT is {minimum}, not {MIN_AMOUNT}"
    answer = functions.invoke(lab, names.VALIDATOR_FUNCTION,  # refused below the minimum: changes nothing
                              {"customer_name": "Your turn", "product": "Check", "quantity": 1, "amount": "0.50"},
                              read_only=True)
    error = (answer.payload or {}).get("errors", {}).get("amount") if isinstance(answer.payload, dict) else None
    if not error:
        return False, f"an order of 0.50 was not refused: {json.dumps(answer.payload)[:200]}"
    return True, f"MIN_ORDER_AMOUNT={minimum}; an order of 0.50 is refused: {error}"


def _reports_expire(lab: Lab) -> tuple[bool, str]:
    try:
        rules = lab.client("s3").get_bucket_lifecycle_configuration(Bucket=names.bucket_name(lab))["Rules"]
    except ClientError as exc:
        if error_code(exc) in GONE | {"NoSuchLifecycleConfiguration"}:
            return False, "the bucket has no lifecycle rule yet"
        raise
    verdicts = [(rule.get("ID") or f"rule {n}", *expires_reports(rule)) for n, rule in enumerate(rules, 1)]
    for _name, passed, detail in verdicts:
        if passed:
            return True, detail
    return False, "; ".join(f"{name}: {detail}" for name, _passed, detail in verdicts)


def _every_12_hours(lab: Lab) -> tuple[bool, str]:
    """The rule fires every 12 hours: judged by the instants its schedule fires at over the coming year (the
    local scheduler's reading, :mod:`labkit.schedule_expressions`), so every spelling of it counts."""
    try:
        rule = lab.client("events").describe_rule(Name=names.rule_name(lab))
    except ClientError as exc:
        if error_code(exc) in GONE:
            return False, "the rule does not exist yet"
        raise
    expression = rule.get("ScheduleExpression") or ""
    if not expression:
        return False, "the rule has no schedule expression (it matches events instead)"
    now = dt.datetime.fromisoformat(lab.target.lab_time()).astimezone(dt.timezone.utc)
    passed, detail = fires_every(expression, EVERY_12_HOURS, now)
    detail = f"the rule's schedule {detail}" if expression in detail else f"the rule's schedule {expression}: {detail}"
    if passed and rule.get("State") != "ENABLED":
        return False, f"{detail}, but the rule is {rule.get('State')}: a disabled rule runs nothing (State='ENABLED')"
    return passed, detail


TASKS: dict[int, Task] = {task.step: task for task in [
    Task(1, "Tag the VPC and its four subnets owner=<your name>",
         "ec2.create_tags(Resources=[...ids...], Tags=[{'Key': 'owner', 'Value': ...}]); find the ids with "
         "describe_subnets(Filters=[{'Name': 'tag:lab', 'Values': [lab.name]}])", _vpc_owner),
    Task(2, "Tag the DB subnet group tier=data",
         "rds.add_tags_to_resource(ResourceName=<the group's DBSubnetGroupArn>, Tags=[...]); the ARN is in "
         "describe_db_subnet_groups", _subnet_group_tier),
    Task(3, "Open 443 on ec2-app-sg to your own address only",
         "ec2.authorize_security_group_ingress(GroupId=..., IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 443, "
         "'ToPort': 443, 'IpRanges': [{'CidrIp': f'{labkit.myip.your_address(lab)}/32'}]}]); never 0.0.0.0/0",
         _https_from_one_address),
    Task(4, f"Keep the database's automated backups {BACKUP_DAYS} days",
         f"rds.modify_db_instance(DBInstanceIdentifier=f'{{lab.name}}-db', BackupRetentionPeriod={BACKUP_DAYS}, "
         "ApplyImmediately=True), then wait until the change shows (database.apply_db_changes does both; the "
         "db_instance_available waiter alone returns before RDS has taken it)", _backups_kept),
    Task(5, "Send the instance your first SSM command: uname -a",
         "ssm.send_command(InstanceIds=[...], DocumentName='AWS-RunShellScript', Parameters={'commands': "
         "['uname -a']}), then get_command_invocation",
         lambda lab: output_on_instance(lab, uname_output, "uname -a's line")),
    Task(6, "From the instance, prove it reaches the database's port",
         "through SSM: timeout 3 bash -c '</dev/tcp/ENDPOINT/3306' && echo open (the endpoint address and port "
         "from describe_db_instances)", _db_port_from_instance),
    Task(7, "List the packages in the app's virtual environment through SSM",
         "the command: ~/orders-app/venv/bin/pip list (or pip freeze), sent with ssm.send_command",
         lambda lab: output_on_instance(lab, pip_list_output, "the app's packages")),
    Task(8, "Read the app's last log lines through SSM",
         "the app is the systemd unit orders-app: journalctl -u orders-app -n 20 --no-pager, sent with "
         "ssm.send_command", lambda lab: output_on_instance(lab, journal_output, "the app's log lines")),
    Task(9, "Read the keys of the secret's previous version, and only its keys",
         "secretsmanager.list_secret_version_ids(SecretId='order-db-secret'), then get_secret_value(SecretId=..., "
         "VersionStage='AWSPREVIOUS') into a variable; print sorted(json.loads(...['SecretString'])), never the value",
         tasks_history.read_previous_version),
    Task(10, f"Raise the validator's minimum amount to {MIN_AMOUNT} through an environment variable",
         "lambda.update_function_configuration(FunctionName='order-validator', Environment={'Variables': {...}}) "
         "with MIN_ORDER_AMOUNT='1.00' added to the current variables (Environment replaces them all)",
         _minimum_amount),
    Task(11, "Make reports expire: a lifecycle rule on reports/",
         "s3.put_bucket_lifecycle_configuration(Bucket=..., LifecycleConfiguration={'Rules': [{'ID': ..., "
         "'Filter': {'Prefix': 'reports/'}, 'Status': 'Enabled', 'Expiration': {'Days': 90}}]})", _reports_expire),
    Task(12, "Give the report function's role the least privilege, and prove it with the API history",
         "put_role_policy on lambda-daily-delta-task-role: secretsmanager:GetSecretValue on the secret's ARN and "
         "s3:PutObject on the bucket's reports/*; detach AmazonS3FullAccess and SecretsManagerReadWrite (keep "
         "AWSLambdaVPCAccessExecutionRole); change the function's configuration so it starts afresh, run it, and "
         "look up its GetSecretValue in the history", tasks_history.report_least_privilege),
    Task(13, "Run the report every 12 hours",
         f"events.put_rule(Name=<the rule's name>, ScheduleExpression='{SCHEDULE_12H}' (or a cron that fires every "
         "12 hours), State='ENABLED'); the target and the Lambda permission stay as they are", _every_12_hours),
]}


def task_check(step: int, lab: Lab, require: bool = False, solution: bool | None = None) -> TaskResult:
    """Whether step ``step``'s task is done, asked of the cloud; ``require`` raises ``TaskNotDone`` if not
    (the notebooks pass their ``solutions`` parameter: a reference solution that ran must pass).

    The answer goes to the lab's task record (:mod:`labkit.records`), marked as the reference solution's when
    ``solution`` (by default ``require``: the notebooks' ``solutions``) says it ran just before."""
    if step not in TASKS:
        raise LabkitError(f"step {step} has no task", f"tasks are numbered {min(TASKS)}-{max(TASKS)}")
    task = TASKS[step]
    passed, detail = task.check(lab)
    records.note_check(lab, step, passed, require if solution is None else solution)
    result = TaskResult(step, task.title, passed, detail, task.hint)
    if require and not passed:
        raise TaskNotDone(str(result), "the reference solution ran but the check says not yet")
    return result


def tasks_frame(lab: Lab, steps: list[int] | None = None) -> pd.DataFrame:
    """Every task (or those of ``steps``) with passed / not yet: step, task, passed, detail, hint."""
    rows = []
    for step in steps or sorted(TASKS):
        try:
            result = task_check(step, lab)
            rows.append({"step": step, "task": result.task, "passed": result.passed, "detail": result.detail,
                         "hint": "" if result.passed else result.hint})
        except (ClientError, LabkitError) as exc:  # e.g. a step not built yet on a half-made lab
            rows.append({"step": step, "task": TASKS[step].title, "passed": False, "detail": str(exc).splitlines()[0],
                         "hint": TASKS[step].hint})
    return pd.DataFrame(rows, columns=["step", "task", "passed", "detail", "hint"])


def tasks_document(lab: Lab) -> dict[str, Any]:
    """Every task of ``lab`` checked now, with its record: what ``labkit tasks --json`` prints."""
    frame = tasks_frame(lab)  # each check updates the records first
    kept = records.lab_records(lab.config.home, lab.name).get("tasks", {})
    rows = []
    for row in frame.to_dict("records"):
        record = kept.get(str(row["step"]), {})
        rows.append({"step": int(row["step"]), "task": row["task"], "passed": bool(row["passed"]),
                     "detail": row["detail"], "hint": row["hint"], "first_passed": record.get("first_passed"),
                     "by": record.get("by"), "solution_ran": bool(record.get("solution_ran"))})
    return {"lab": lab.name, "student": records.student_name(), "checked_at": records.now(), "tasks": rows,
            "passed": sum(r["passed"] for r in rows), "total": len(rows),
            "solutions_ran": [r["step"] for r in rows if r["solution_ran"]]}

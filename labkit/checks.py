"""Checks: for each step a table of (check, expected, actual, passed), and the tutorial's Verification list."""
from __future__ import annotations

import contextvars
import http.client
from collections.abc import Callable
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from labkit import compute, database, functions, health, iam, names, network, paths, schedule, secretsmanager, storage
from labkit.errors import (
    DENIED,
    GONE,
    AccessDenied,
    CheckFailed,
    ConfigError,
    LabkitError,
    StepError,
    access_denied,
    error_code,
)
from labkit.names import layer_name
from labkit.session import Lab
from labkit.tagging import name_tag

COLUMNS = ["check", "expected", "actual", "passed"]  # expected/actual as text: yes/no, lists comma-separated
# What a check may meet when the thing it looks at is missing: AWS's "not there" codes (with S3's for an
# unset configuration), an earlier step that has not run (StepError), an app that does not answer.
ABSENT = GONE | {"NoSuchPublicAccessBlockConfiguration", "ServerSideEncryptionConfigurationNotFoundError"}
UNREACHABLE = (OSError, http.client.HTTPException)


class _Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.refused: list[str] = []  # questions the lab's configuration refused since the last row (_safe)

    def add(self, check: str, expected: Any, actual: Any, passed: bool | None = None) -> None:
        """One check, phrased positively ("SSH port 22 closed": expected yes), its values as they read.

        A question refused on the way to this row (a ConfigError in :func:`_safe`) fails it, with the refusal."""
        if self.refused:
            actual, passed = "not asked: " + "; ".join(self.refused), False
            self.refused = []
        self.rows.append({"check": check, "expected": shown(expected), "actual": shown(actual),
                          "passed": bool(expected == actual if passed is None else passed)})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)


def shown(value: Any) -> str:
    """A check's expected or actual value as it reads: yes/no, lists comma-separated, "(none)" when missing."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


_table: contextvars.ContextVar[_Table | None] = contextvars.ContextVar("labkit_check_table", default=None)


def _safe(fn: Callable[[], Any], default: Any = None) -> Any:
    """``fn()``, or ``default`` when what it looks at is missing (then the check fails, naming what it expected).

    Only the expected errors mean "missing": anything else (AWS's refusal, a bug in labkit) propagates. A question
    the lab's configuration refuses (ConfigError: say, a call an unconfirmed aws lab may not send) fails the check
    it was for, with the refusal as its actual value, and the step's other checks still run."""
    try:
        return fn()
    except ConfigError as exc:
        table = _table.get()
        if table is None:
            raise
        table.refused.append(str(exc).split("\n", 1)[0])
        return default
    except ClientError as exc:
        if error_code(exc) in ABSENT:
            return default
        if error_code(exc) in DENIED:
            raise access_denied(exc, "reading what a check looks at") from exc
        raise
    except (StepError, *UNREACHABLE):  # an earlier step has not run, or the app does not answer
        return default


def _paths(lab: Lab, t: _Table, wanted: dict[str, bool]) -> None:
    """The network paths a step opens (True) or must keep closed (False), decided by the rules the local cloud
    enforces (:mod:`labkit.paths`); a path that fails names the rule, route or endpoint that decides it."""
    frame = _safe(lambda: paths.reachability_frame(lab))
    for prefix, expected in wanted.items():
        rows = frame[frame["path"].str.startswith(prefix)] if frame is not None else pd.DataFrame()
        row = rows.iloc[0] if not rows.empty else None
        state = None if row is None or row["allowed"] is None else ("open" if row["allowed"] else "closed")
        wanted_state = "open" if expected else "closed"
        actual = state if row is None or state in (None, wanted_state) else f"{state}: {row['because']}"
        t.add(f"path {prefix} {wanted_state}", wanted_state, actual, state == wanted_state)


def check_step_1(lab: Lab, t: _Table) -> None:
    ec2 = lab.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    t.add("VPC exists with CIDR 10.0.0.0/16", network.VPC_CIDR, vpcs[0]["CidrBlock"] if vpcs else None)
    subnets = ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]
    public = [s for s in subnets if s.get("MapPublicIpOnLaunch")]
    private = [s for s in subnets if not s.get("MapPublicIpOnLaunch")]
    t.add("public subnets in two AZs", 2, len({s["AvailabilityZone"] for s in public}))
    t.add("private subnets in two AZs", 2, len({s["AvailabilityZone"] for s in private}))
    igws = ec2.describe_internet_gateways(Filters=lab.tag_filter())["InternetGateways"]
    t.add("internet gateway attached", True, bool(igws and igws[0].get("Attachments")))
    tables = {name_tag(r): r for r in ec2.describe_route_tables(Filters=lab.tag_filter())["RouteTables"]}
    pub = tables.get(f"{lab.name}-public-rt", {})
    prv = tables.get(f"{lab.name}-private-rt", {})
    t.add("public route 0.0.0.0/0 -> internet gateway", True,
          any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId", "").startswith("igw-")
              for r in pub.get("Routes", [])))
    t.add("private route table has no internet route", True,
          bool(prv) and not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in prv.get("Routes", [])))
    ids = [v["VpcId"] for v in vpcs]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": ids}])["VpcEndpoints"] if ids else []
    services = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in endpoints}
    t.add("S3 gateway endpoint", "Gateway", services.get("s3", {}).get("VpcEndpointType"))
    t.add("Secrets Manager interface endpoint with private DNS", True,
          bool(services.get("secretsmanager", {}).get("PrivateDnsEnabled")))


def check_step_2(lab: Lab, t: _Table) -> None:
    group = _safe(lambda: lab.client("rds").describe_db_subnet_groups(
        DBSubnetGroupName=network.DB_SUBNET_GROUP)["DBSubnetGroups"][0])
    t.add(f"subnet group {network.DB_SUBNET_GROUP} exists", True, group is not None)
    private = network.subnet_ids(lab, public=False)
    members = {s["SubnetIdentifier"] for s in (group or {}).get("Subnets", [])}
    t.add("uses the private subnets only", sorted(private), sorted(members), bool(members) and members == private)


def check_step_3(lab: Lab, t: _Table) -> None:
    rules = network.security_groups_frame(lab)
    rds = rules[rules["group"] == network.SG_NAMES["rds"]]
    t.add("RDS group allows 3306 only from the EC2 and Lambda groups",
          "3306 from ec2-app-sg, lambda-sg", ", ".join(f"{p} from {s}" for p, s in zip(rds["port"], rds["from"])),
          sorted(zip(rds["port"], rds["from"])) == [(3306, "ec2-app-sg"), (3306, "lambda-sg")])
    ec2 = rules[rules["group"] == network.SG_NAMES["ec2"]]
    t.add(f"EC2 group allows the app port {lab.config.app_port}", True, lab.config.app_port in set(ec2["port"]))
    if lab.config.ssh_cidr:
        t.add(f"SSH port 22 open to {lab.config.ssh_cidr} (asked for)", True, 22 in set(ec2["port"]))
    else:
        t.add("SSH port 22 closed (commands go through SSM Run Command)", True, 22 not in set(ec2["port"]))
    t.add("port 80 closed (nothing listens there)", True, 80 not in set(ec2["port"]))
    endpoints = rules[rules["group"] == network.SG_NAMES["endpoints"]]
    t.add("endpoint group allows 443 from the Lambda group", True,
          (443, "lambda-sg") in set(zip(endpoints["port"], endpoints["from"])))
    t.add("endpoint group allows 443 from the EC2 group (private DNS covers the instance too)", True,
          (443, network.SG_NAMES["ec2"]) in set(zip(endpoints["port"], endpoints["from"])))


def check_step_4(lab: Lab, t: _Table) -> None:
    db = database.describe_db_instance(lab) or {}
    t.add("RDS instance available", "available", db.get("DBInstanceStatus"))
    t.add("engine MySQL", "mysql", db.get("Engine"))
    t.add(f"engine version pinned ({names.DB_PARAMETER_GROUP_FAMILY})", True,
          str(db.get("EngineVersion", "")).startswith(names.DB_PARAMETER_GROUP_FAMILY.removeprefix("mysql") + "."))
    t.add("database ordersdb", database.DB_NAME, db.get("DBName"))
    t.add("database not publicly accessible", True, db.get("PubliclyAccessible") is False)
    t.add("storage encrypted", True, db.get("StorageEncrypted"))
    group = db.get("DBSubnetGroup", {}).get("DBSubnetGroupName", "")
    t.add("in the private subnet group", network.DB_SUBNET_GROUP.lower(), group.lower())  # RDS lower-cases names
    _paths(lab, t, {"your computer -> RDS :3306": False})


def check_step_5(lab: Lab, t: _Table) -> None:
    instance = compute.describe_instance(lab) or {}
    t.add("instance running", "running", instance.get("State", {}).get("Name"))
    t.add("instance type", compute.INSTANCE_TYPE, instance.get("InstanceType"))
    t.add(f"instance profile {iam.EC2_ROLE}", iam.EC2_ROLE,
          instance.get("IamInstanceProfile", {}).get("Arn", "").rsplit("/", 1)[-1])
    subnet = instance.get("SubnetId")
    t.add("in a public subnet", True, subnet in network.subnet_ids(lab, public=True))
    info = _safe(lambda: lab.client("ssm").describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance["InstanceId"]]}])["InstanceInformationList"], []
                 ) if instance else []
    t.add("reachable by SSM Run Command", "Online", info[0]["PingStatus"] if info else None)
    _paths(lab, t, {"app -> Lambda API": True, "app instance -> Secrets Manager": True,
                    "app instance -> RDS :3306": True})


ORDERS_TABLE = ("SELECT COLUMN_NAME AS Field, (SELECT COUNT(*) FROM information_schema.STATISTICS WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'created_at') AS indexed "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' "
                "ORDER BY ORDINAL_POSITION;")  # the columns and the created_at index in one command on the instance


def check_step_6(lab: Lab, t: _Table) -> None:
    described = _safe(lambda: database.query(lab, ORDERS_TABLE))
    columns = described["Field"].tolist() if described is not None and "Field" in described else []
    t.add("orders table has the six columns", database.ORDER_COLUMNS, columns)
    t.add("index on created_at", True, bool(columns) and int(described["indexed"].iloc[0]) > 0)


def check_step_7(lab: Lab, t: _Table) -> None:
    out = _safe(lambda: compute.run_on_instance(lab, compute.PRELUDE + '"$APP_DIR/venv/bin/python" -c '
                                                "'import flask, boto3, pymysql, hypercorn; print(\"ok\")'", step=7,
                                                read_only=True), "")
    t.add("flask, boto3, pymysql, hypercorn importable in the app venv", "ok", out.strip())


def check_step_8(lab: Lab, t: _Table) -> None:
    url = _safe(lambda: compute.app_url(lab))
    if url is None:
        t.add("app answers /healthz", 200, "no app URL: the instance is missing (run steps 5 and 8)")
        return
    probe = health.http_probe(url + "healthz")
    t.add("app answers /healthz", 200, probe.status if probe.up else f"{probe.reason}; how to fix: {health.APP_FIX}")
    expected = (_safe(lambda: compute.describe_instance(lab)) or {}).get("InstanceId")
    answered = _safe(lambda: compute.app_identity(url))
    t.add("the app at the URL is this lab's instance", expected, answered, bool(expected) and answered == expected)
    probe = health.http_probe(url)
    t.add("order form served", 200, probe.status if probe.up else f"{probe.reason}; how to fix: {health.APP_FIX}")
    _paths(lab, t, {f"your computer -> app :{lab.config.app_port}": True})


def check_step_9(lab: Lab, t: _Table) -> None:
    value = secretsmanager.read_secret(lab) or {}
    for key in ("username", "password", "host", "port", "dbname"):
        t.add(f"secret has {key}", True, bool(value.get(key)))
    db = database.describe_db_instance(lab) or {}
    t.add("host matches the RDS endpoint", db.get("Endpoint", {}).get("Address"), value.get("host"))


def _check_function(lab: Lab, t: _Table, name: str, role: str, env_key: str) -> None:
    config = _safe(lambda: lab.client("lambda").get_function(FunctionName=name)["Configuration"], {})
    t.add(f"{name} active", "Active", config.get("State"))
    t.add("pymysql layer attached", True, any(f":layer:{layer_name(lab)}:" in layer["Arn"] for layer in config.get("Layers", [])))
    private = network.subnet_ids(lab, public=False)
    subnets = set((config.get("VpcConfig") or {}).get("SubnetIds", []))
    t.add("in the VPC's private subnets", True, bool(subnets) and subnets == private)
    t.add(f"role {role}", role, config.get("Role", "").rsplit("/", 1)[-1])
    t.add(f"environment has {env_key}", True, env_key in config.get("Environment", {}).get("Variables", {}))


def check_step_10(lab: Lab, t: _Table) -> None:
    _check_function(lab, t, iam.VALIDATOR_FUNCTION, iam.VALIDATOR_ROLE, "DB_SECRET_NAME")
    # amount 0: the validator refuses it before it touches the database, so the invoke changes nothing
    result = _safe(lambda: functions.invoke(lab, iam.VALIDATOR_FUNCTION, {"customer_name": "check", "product": "check",
                                                                           "quantity": 1, "amount": 0},
                                            read_only=True))
    t.add("invalid order (amount 0) answered invalid", "invalid",
          (result.payload or {}).get("status") if result and isinstance(result.payload, dict) else result)
    _paths(lab, t, {"order-validator -> Secrets Manager": True, "order-validator -> RDS :3306": True})


def check_step_11(lab: Lab, t: _Table) -> None:
    s3, name = lab.client("s3"), storage.bucket_name(lab)
    t.add("bucket exists", True, _safe(lambda: s3.head_bucket(Bucket=name) is not None, False))
    block = _safe(lambda: s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"], {})
    t.add("Block Public Access on (all four settings)", True, bool(block) and all(block.values()))
    rules = _safe(lambda: s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"], [])
    t.add("default encryption", True, bool(rules))


def check_step_12(lab: Lab, t: _Table) -> None:
    _check_function(lab, t, iam.REPORT_FUNCTION, iam.REPORT_ROLE, "REPORT_BUCKET")
    _paths(lab, t, {"daily-delta -> RDS :3306": True, "daily-delta -> S3": True})


def check_step_13(lab: Lab, t: _Table) -> None:
    frame = schedule.schedule_frame(lab)
    row = frame.iloc[0] if not frame.empty else {}
    t.add("rule enabled", "ENABLED", row.get("state") if len(frame) else None)
    expression = row.get("schedule") if len(frame) else None
    t.add("runs at least every 24 hours", schedule.SCHEDULE, expression, schedule.runs_at_least_daily(expression))
    t.add(f"target {iam.REPORT_FUNCTION}", iam.REPORT_FUNCTION, row.get("target") if len(frame) else None)
    t.add("Lambda permission for the rule", True, bool(row.get("permission")) if len(frame) else False)


CHECKS: dict[int, Callable[[Lab, _Table], None]] = {n: globals()[f"check_step_{n}"] for n in range(1, 14)}


def step_checks(lab: Lab, step: int) -> pd.DataFrame:
    """The checks of one step as a DataFrame (check, expected, actual, passed)."""
    table = _Table()
    token = _table.set(table)
    try:
        CHECKS[step](lab, table)
    except ClientError as exc:
        if error_code(exc) in DENIED:
            raise access_denied(exc, f"the questions of the step {step} checks") from exc
        table.add("AWS answered the check's questions", "no error", error_code(exc))
    except AccessDenied:
        raise
    except (BotoCoreError, OSError) as exc:  # a part that is down fails the check; it never ends the run
        table.add("the parts the check asks are reachable", "reachable",
                  f"{type(exc).__name__}: {exc}; how to fix: start what is down (`labkit status` shows which)", False)
    except LabkitError as exc:
        table.add("the check could run", "ran", str(exc).replace("\n", " "), False)
    finally:
        _table.reset(token)
    return table.frame()


def summary(step: int | str, frame: pd.DataFrame) -> str:
    """One line, e.g. ``Step 4: 6/6 checks passed``."""
    label = f"Step {step}" if isinstance(step, int) else str(step)
    return f"{label}: {int(frame['passed'].sum())}/{len(frame)} checks passed"


def require_passed(step: int | str, frame: pd.DataFrame) -> None:
    """Raise CheckFailed naming each failed check, so a run stops at the step that did not work."""
    failed = frame[~frame["passed"]]
    if not failed.empty:
        lines = "; ".join(f"{r.check} (expected {r.expected}, got {r.actual})" for r in failed.itertuples())
        raise CheckFailed(f"{summary(step, frame)}. Failed: {lines}",
                          "re-run the step's cells; if it still fails, see 15_troubleshooting")


def all_checks(lab: Lab, through: int = 13) -> pd.DataFrame:
    frames = []
    for step in range(1, through + 1):
        frame = step_checks(lab, step)
        frame.insert(0, "step", step)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

"""Steps 4 and 6: the RDS MySQL instance, the ``orders`` table, and orders as DataFrames.

The database is private, so it is never queried from this machine: the schema is applied and orders
are read on the EC2 instance through SSM Run Command, with the password fetched there from Secrets
Manager into ``MYSQL_PWD`` (never on a command line).
"""
from __future__ import annotations

import io
import math
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError, WaiterError
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from labkit import compute, secretsmanager
from labkit.errors import StepError
from labkit.lookups import describe_db_instance, engine_version, require_security_group
from labkit.names import DB_ENGINE, DB_INSTANCE_CLASS, DB_NAME, DB_SUBNET_GROUP, SECRET_NAME, db_instance_id, run_first
from labkit.session import Lab

__all__ = ["DB_NAME", "ORDER_COLUMNS", "apply_db_changes", "create_database",
           "create_orders_table", "db_instance_frame", "db_instance_id", "describe_db_instance", "engine_version",
           "orders_frame", "query", "wait_until_available"]

SCHEMA = Path(__file__).resolve().parents[1] / "sql" / "schema.sql"
MASTER_USER = "admin"
SSM_OUTPUT_LIMIT = 24_000  # characters of StandardOutputContent that GetCommandInvocation returns
PAGE_ROWS = 75  # an order row is at most ~290 characters (two VARCHAR(100)): 75 rows stay under the limit
ORDER_COLUMNS = ["order_id", "customer_name", "product", "quantity", "amount", "created_at"]
DB_WAIT_SECONDS = 3600  # AWS: 10-20 minutes to create an instance, sometimes more; a longer wait resumes
# Statuses RDS does not leave by itself (the db_instance_available waiter stops at the first three at once).
RDS_STUCK = {"deleted", "deleting", "failed", "incompatible-restore", "incompatible-parameters",
             "incompatible-network", "incompatible-option-group", "incompatible-credentials", "storage-full",
             "inaccessible-encryption-credentials", "stopped", "stopping"}
UNSHOWN_CHANGES = {"MasterUserPassword", "ApplyImmediately"}  # changes DescribeDBInstances never shows
UNSEEN_POLLS = 4  # a change not seen under way within this many polls was applied between two of them


def create_database(lab: Lab) -> dict[str, Any]:
    """Step 4: MySQL ``ordersdb``, free-tier class, private, encrypted, in the DB subnet group.

    The master password is generated here and stored only in Secrets Manager. If the instance exists but
    the stored password is lost, a new one is set with ModifyDBInstance.
    """
    rds = lab.client("rds")
    rds_group = require_security_group(lab, "rds", step=4)
    db = describe_db_instance(lab)
    secretsmanager.recover_secret(lab, step=4)  # a secret scheduled for deletion still holds the password
    stored = secretsmanager.read_secret(lab) or {}
    if db is None:
        password = stored.get("password") or secretsmanager.generate_password()
        secretsmanager.store_master_credentials(lab, MASTER_USER, password)
        try:
            rds.create_db_instance(
                DBInstanceIdentifier=db_instance_id(lab), DBName=DB_NAME, Engine=DB_ENGINE,
                EngineVersion=engine_version(lab), AutoMinorVersionUpgrade=True,
                DBInstanceClass=DB_INSTANCE_CLASS, AllocatedStorage=20, StorageType="gp2", StorageEncrypted=True,
                MasterUsername=MASTER_USER, MasterUserPassword=password, PubliclyAccessible=False,
                DBSubnetGroupName=DB_SUBNET_GROUP, VpcSecurityGroupIds=[rds_group], MultiAZ=False,
                BackupRetentionPeriod=1, DeletionProtection=False, Tags=lab.tags)
        except ClientError as exc:
            raise StepError(4, f"RDS refused to create the instance: {exc}",
                            "check steps 2 and 3 ran, and that this account may create db.t3.micro") from exc
    elif not stored.get("password"):
        password = secretsmanager.generate_password()
        apply_db_changes(lab, MasterUserPassword=password)
        secretsmanager.store_master_credentials(lab, db["MasterUsername"], password)
    wait_until_available(lab, step=4)
    available = describe_db_instance(lab)
    if available is None:  # deleted (by hand, or by a teardown) once it was available
        raise StepError(4, f"the RDS instance {db_instance_id(lab)} was deleted while it started",
                        "re-run this step to create a new one")
    return available


def wait_until_available(lab: Lab, step: int | str = 4, seconds: float = DB_WAIT_SECONDS) -> None:
    """Wait for the DB instance to be ``available``, up to ``seconds`` (an hour: AWS takes 10-20 minutes to create
    one, sometimes longer). A wait that ends first says the instance's status and that running the step again goes
    on waiting (RDS carries on meanwhile); a status RDS cannot leave by itself says so."""
    delay = max(1, int(lab.target.poll_seconds * 2))
    try:
        lab.client("rds").get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=db_instance_id(lab),
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(seconds / delay))})
    except WaiterError as exc:
        found = ((exc.last_response or {}).get("DBInstances") or [{}])[0].get("DBInstanceStatus")
        if found in RDS_STUCK or "Max attempts exceeded" not in str(exc):
            raise StepError(step, f"the DB instance {db_instance_id(lab)} is {found or 'gone'}, and RDS does not "
                                  "make it available by itself",
                            "read why with `aws rds describe-events --source-type db-instance`; start a stopped "
                            "instance (`aws rds start-db-instance`), delete a failed one (labkit down, or "
                            "99_teardown), then run this step again") from exc
        raise StepError(step, f"the DB instance {db_instance_id(lab)} is still {found} after {seconds / 60:.0f} "
                              "minutes; RDS goes on with it meanwhile",
                        "run this step again: it goes on waiting where this wait stopped") from exc


def apply_db_changes(lab: Lab, seconds: float = DB_WAIT_SECONDS, **changes: Any) -> dict[str, Any]:
    """ModifyDBInstance with ``changes`` (``BackupRetentionPeriod=7``), applied at once, and wait until they show.

    Right after ModifyDBInstance the instance can still read ``available`` with no pending change (RDS takes the
    change a few seconds later), so the ``db_instance_available`` waiter alone returns at once. Done is: the
    instance ``available``, no PendingModifiedValues, each change that DescribeDBInstances shows (a backup period,
    a class) at its new value, and a change it cannot show (a password) seen under way: pending, or the status
    ``modifying`` / ``resetting-master-credentials``. A change never seen under way within
    :data:`UNSEEN_POLLS` polls was applied between two of them. Returns the instance as described then."""
    rds, identifier = lab.client("rds"), db_instance_id(lab)
    answer = rds.modify_db_instance(DBInstanceIdentifier=identifier, ApplyImmediately=True, **changes)["DBInstance"]
    shown = {key: value for key, value in changes.items() if key not in UNSHOWN_CHANGES}
    seen = _under_way(answer)
    started = time.monotonic()

    def done(db: dict[str, Any]) -> bool:
        nonlocal seen
        if not db:
            raise StepError(4, f"the DB instance {identifier} is gone", run_first(4))
        seen = seen or _under_way(db)
        settled = db.get("DBInstanceStatus") == "available" and not db.get("PendingModifiedValues")
        applied = all(db.get(key) == value for key, value in shown.items())
        unseen_long = time.monotonic() - started >= min(seconds, UNSEEN_POLLS * lab.target.poll_seconds)
        return settled and applied and (seen or bool(shown) or unseen_long)

    try:
        return Retrying(retry=retry_if_result(lambda db: not done(db)), stop=stop_after_delay(seconds),
                        wait=wait_fixed(lab.target.poll_seconds))(lambda: describe_db_instance(lab) or {})
    except RetryError as exc:
        db = exc.last_attempt.result() or {}
        raise StepError(4, f"the changes {sorted(changes)} to {identifier} did not show within "
                           f"{seconds / 60:.0f} minutes (status {db.get('DBInstanceStatus')}, pending "
                           f"{sorted(db.get('PendingModifiedValues') or {})})",
                        "run it again: it waits for the same changes; RDS goes on with them meanwhile") from None


def _under_way(db: dict[str, Any]) -> bool:
    return db.get("DBInstanceStatus") != "available" or bool(db.get("PendingModifiedValues"))


def db_instance_frame(lab: Lab) -> pd.DataFrame:
    db = describe_db_instance(lab)
    if db is None:
        return pd.DataFrame(columns=["setting", "value"])
    rows = {"identifier": db["DBInstanceIdentifier"], "status": db["DBInstanceStatus"], "engine": f"{db['Engine']} {db.get('EngineVersion', '')}".strip(),
            "class": db["DBInstanceClass"], "database": db.get("DBName"),
            "endpoint": lab.target.as_on_aws("db", f"{db['Endpoint']['Address']}:{db['Endpoint']['Port']}",
                                             db["DBInstanceIdentifier"]) if db.get("Endpoint") else "",
            "publicly accessible": db.get("PubliclyAccessible"), "encrypted": db.get("StorageEncrypted"),
            "subnet group": db.get("DBSubnetGroup", {}).get("DBSubnetGroupName"),
            "security groups": ", ".join(g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", []))}
    return pd.DataFrame({"setting": list(rows), "value": [v if isinstance(v, bool) else str(v) for v in rows.values()]})


def connect_from_your_computer(lab: Lab, timeout: float = 3.0) -> pd.DataFrame:
    """Step 4's proof of "Public access: No": a real MySQL connection from this computer to the endpoint.

    From outside the VPC the SYN of a private database goes unanswered, so the client's own connect() times
    out (pymysql error 2003 "... (timed out)"), never a refusal and never a password prompt. No password is
    sent: a database that answered at all would be reachable, whatever it then says about the login."""
    import pymysql

    db = describe_db_instance(lab)
    if db is None or not db.get("Endpoint"):
        raise StepError(4, "the RDS instance does not exist yet", run_first(4))
    host, port = db["Endpoint"]["Address"], db["Endpoint"]["Port"]
    started = time.monotonic()
    try:
        pymysql.connect(host=host, port=port, user=db["MasterUsername"], password="", connect_timeout=timeout).close()
        answer, reached = "connected", True
    except pymysql.err.OperationalError as exc:
        answer = f"OperationalError{exc.args}"
        reached = exc.args[0] != 2003  # 2003: the server never answered; anything else came from the server
    where = lab.target.as_on_aws("db", f"{host}:{port}", db["DBInstanceIdentifier"])
    return pd.DataFrame([{"from": "your computer", "to": where, "reached": reached, "answer": answer,
                          "after": f"{time.monotonic() - started:.1f} s"}])


def _mysql_script(lab: Lab, sql_heredoc: str, args: str = "", read_only: bool = False) -> str:
    """The script that runs ``sql_heredoc`` with the mysql client on the instance. ``read_only`` installs nothing
    (a missing client says to run step 6) and runs the SQL in read-only transactions, so it can change nothing.

    The client connects with TLS and verifies the server: its certificate must chain to the RDS CA bundle of the
    lab's region (written beside the app, ``rds-ca-bundle.pem``) and name the endpoint it was asked for
    (``--ssl-mode=VERIFY_IDENTITY``; MariaDB's client says ``--ssl-verify-server-cert``). The password never
    crosses the network in the clear, and a server that is not the lab's database is refused."""
    db = describe_db_instance(lab)
    if db is None:
        raise StepError(6, "the database instance does not exist", run_first(4))
    host, port = db["Endpoint"]["Address"], db["Endpoint"]["Port"]
    fetch = ("import boto3, json; print(json.loads(boto3.client('secretsmanager', region_name='"
             + lab.region + "').get_secret_value(SecretId='" + SECRET_NAME + "')['SecretString'])['password'])")
    missing = f'{{ echo "the instance has no %s: {run_first(6)}" >&2; exit 3; }}'
    if read_only:
        sql_heredoc = "SET SESSION TRANSACTION READ ONLY;\n" + sql_heredoc
        tools = (f"command -v mysql >/dev/null 2>&1 || {missing % 'mysql client'}\n"
                 "python3 -c 'import importlib.util, sys; sys.exit(not importlib.util.find_spec(\"boto3\"))' || "
                 f"{missing % 'boto3 for python3'}")
    else:
        tools = ("command -v mysql >/dev/null 2>&1 || apt_install mysql-client\n"
                 "python3 -c 'import importlib.util, sys; sys.exit(not importlib.util.find_spec(\"boto3\"))' || "
                 "apt_install python3-boto3")
    bundle = lab.target.db_ca_bundle(region=lab.region).decode()
    return compute.PRELUDE + f"""
{tools}
MYSQL_PWD="$(python3 -c "{fetch}")"
export MYSQL_PWD
mkdir -p "$APP_DIR"
CA="$APP_DIR/rds-ca-bundle.pem"
cat > "$CA" <<'PEM'
{bundle}PEM
if mysql --version 2>/dev/null | grep -q MariaDB; then
  set -- --ssl-ca="$CA" --ssl-verify-server-cert  # MariaDB's client: the same checks, under its own names
else
  set -- --ssl-mode=VERIFY_IDENTITY --ssl-ca="$CA"
fi
mysql "$@" --host={host} --port={port} --user={db['MasterUsername']} --default-character-set=utf8mb4 {args} <<'SQL'
{sql_heredoc}
SQL
"""


def create_orders_table(lab: Lab) -> pd.DataFrame:
    """Step 6: apply ``sql/schema.sql`` from the instance with the mysql client; return the table's columns."""
    sql = SCHEMA.read_text() + "\nDESCRIBE orders;\n"
    out = compute.run_on_instance(lab, _mysql_script(lab, sql, "--batch"), step=6)
    return pd.read_csv(io.StringIO(out), sep="\t")


def query(lab: Lab, sql: str) -> pd.DataFrame:
    """Run one read-only SQL statement on the instance and return its result as a DataFrame.

    The statement runs in a read-only transaction (a write fails with MySQL error 1792), so the command only looks:
    an unconfirmed aws lab sends it.

    SSM Run Command returns at most 24,000 characters of a command's output; a result that reaches that
    limit is cut, so it raises instead of returning part of the rows as if they were all (page with LIMIT).
    """
    out = compute.run_on_instance(lab, _mysql_script(lab, f"USE {DB_NAME};\n{sql}", "--batch", read_only=True),
                                  step="query", read_only=True)
    if len(out) >= SSM_OUTPUT_LIMIT:
        raise StepError("query", f"the result reached SSM Run Command's {SSM_OUTPUT_LIMIT:,}-character output limit, "
                                 "so it is cut", "ask for fewer rows (LIMIT ... OFFSET ...) or fewer columns")
    if not out.strip():
        return pd.DataFrame()
    return pd.read_csv(io.StringIO(out), sep="\t", keep_default_na=False, dtype=str)


def orders_frame(lab: Lab, limit: int = 200) -> pd.DataFrame:
    """The newest ``limit`` orders, as stored in RDS, read in pages that each fit in one SSM output.

    ``frame.attrs["total"]`` is how many orders are stored and ``frame.attrs["partial"]`` whether the frame
    shows fewer than that; a partial frame also says so with a warning.
    """
    pages: list[pd.DataFrame] = []
    total, offset = 0, 0
    while offset < limit:
        rows = min(PAGE_ROWS, limit - offset)
        page = query(lab, f"SELECT {', '.join(ORDER_COLUMNS)}, (SELECT COUNT(*) FROM orders) AS stored "
                          f"FROM orders ORDER BY created_at DESC, order_id LIMIT {int(rows)} OFFSET {int(offset)};")
        if page.empty:
            break
        total = int(page["stored"].iloc[0])
        pages.append(page.drop(columns="stored"))
        offset += len(page)
        if len(page) < rows:
            break
    frame = pd.concat(pages, ignore_index=True) if pages else pd.DataFrame(columns=ORDER_COLUMNS)
    frame["quantity"] = frame["quantity"].astype(int)
    frame["amount"] = frame["amount"].astype(float)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame.attrs.update(total=total, partial=total > len(frame))
    if frame.attrs["partial"]:
        warnings.warn(f"orders_frame shows the newest {len(frame)} of {total} orders (limit={limit})", stacklevel=2)
    return frame

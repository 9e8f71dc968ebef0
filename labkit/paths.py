"""The system's network paths, allowed or blocked, and the rule, route or endpoint that decides each.

Reads the lab's records through the describe APIs and applies :mod:`labkit.reachability` (the same rules
the local cloud enforces), so the table means the same on both targets, as AWS's Reachability Analyzer
would explain it.
"""
from __future__ import annotations

import pandas as pd

from labkit import names
from labkit import reachability as rx
from labkit.errors import if_exists
from labkit.lookups import describe_db_instance, describe_instance
from labkit.session import Lab

COLUMNS = ["path", "allowed", "because"]


def _function(lab: Lab, net: rx.Network, name: str) -> rx.Node | None:
    config = if_exists(lambda: lab.client("lambda").get_function_configuration(FunctionName=name),
                       f"reading the function {name}")
    return rx.function_node(net, config) if config else None


def lab_nodes(lab: Lab, net: rx.Network) -> dict[str, rx.Node | None]:
    """The lab's components where they sit (None for what is not built yet)."""
    instance, db = describe_instance(lab), describe_db_instance(lab)
    return {"app": rx.instance_node(instance) if instance and instance.get("VpcId") else None,
            "validator": _function(lab, net, names.VALIDATOR_FUNCTION),
            "report": _function(lab, net, names.REPORT_FUNCTION),
            "db": rx.db_node(net, db) if db else None}


def reachability_frame(lab: Lab) -> pd.DataFrame:
    """One row per path of the system: allowed or blocked, and why."""
    vpcs = lab.client("ec2").describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    net = rx.Network.describe(lab.client("ec2"), [v["VpcId"] for v in vpcs]) if vpcs else rx.Network()
    nodes, you, port = lab_nodes(lab, net), rx.YOUR_COMPUTER, lab.config.app_port
    region = lab.region
    wanted = [
        (f"your computer -> app :{port}", "app", lambda: rx.connect(net, you, nodes["app"], port)),
        ("app -> Lambda API", "app", lambda: rx.api_path(net, nodes["app"], "lambda", region)),
        ("app instance -> Secrets Manager", "app", lambda: rx.api_path(net, nodes["app"], "secretsmanager", region)),
        ("order-validator -> Secrets Manager", "validator",
         lambda: rx.api_path(net, nodes["validator"], "secretsmanager", region)),
        ("order-validator -> RDS :3306", "validator+db", lambda: rx.connect(net, nodes["validator"], nodes["db"], 3306)),
        ("daily-delta -> RDS :3306", "report+db", lambda: rx.connect(net, nodes["report"], nodes["db"], 3306)),
        ("daily-delta -> S3", "report", lambda: rx.api_path(net, nodes["report"], "s3", region)),
        ("app instance -> RDS :3306", "app+db", lambda: rx.connect(net, nodes["app"], nodes["db"], 3306)),
        ("your computer -> RDS :3306", "db", lambda: rx.connect(net, you, nodes["db"], 3306)),
    ]
    rows = []
    for path, needs, decide in wanted:
        missing = [n for n in needs.split("+") if nodes[n] is None]
        if missing:
            rows.append({"path": path, "allowed": None, "because": f"not built yet ({', '.join(missing)})"})
            continue
        verdict = decide()
        rows.append({"path": path, "allowed": verdict.allowed, "because": verdict.reason})
    return pd.DataFrame(rows, columns=COLUMNS)


def path_allowed(lab: Lab, path_prefix: str) -> bool | None:
    """Whether the path whose name starts with ``path_prefix`` is allowed (None when not built yet)."""
    frame = reachability_frame(lab)
    row = frame[frame["path"].str.startswith(path_prefix)]
    return None if row.empty else row.iloc[0]["allowed"]

"""The system's network paths, allowed or blocked, and the rule, route or endpoint that decides each.

Reads the lab's records through the describe APIs and applies :mod:`labkit.reachability` (the same rules
the local cloud enforces), so the table means the same on both targets, as AWS's Reachability Analyzer
would explain it. A part not built yet is judged where the lab will put it (its subnets and security
group, once steps 1 and 3 made them): after step 3 the table already says what the groups will let through.
Your computer is where AWS sees it (:func:`labkit.myip.your_address`), so a rule for your address /32 opens
its paths; when the address cannot be learned, only a 0.0.0.0/0 rule is sure to, and the table says why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from labkit import myip, names
from labkit import reachability as rx
from labkit.errors import if_exists
from labkit.lookups import describe_db_instance, describe_instance, security_group_ids, subnet_ids
from labkit.session import Lab

COLUMNS = ["path", "allowed", "because", "as"]
BUILT, PLANNED = "built", "planned"


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


def planned_nodes(lab: Lab, net: rx.Network) -> dict[str, rx.Node | None]:
    """Where the lab puts each component (steps 4, 5, 10, 12): None until its subnets and group exist."""
    groups = security_group_ids(lab)
    public, private = sorted(subnet_ids(lab, public=True)), tuple(sorted(subnet_ids(lab, public=False)))
    vpc = (net.subnet(private[0]) or {}).get("VpcId") if private else None
    if not vpc or not public:
        return dict.fromkeys(("app", "validator", "report", "db"))

    def place(name: str, kind: str, role: str, subnets: tuple[str, ...], public_ip: bool = False) -> rx.Node | None:
        if role not in groups:
            return None
        return rx.Node(name, kind, vpc, subnets, (groups[role],), rx.eni_address(net, subnets[0], name), public_ip)

    return {"app": place(names.instance_name(lab), "instance", "ec2", (public[0],), public_ip=True),
            "validator": place(names.VALIDATOR_FUNCTION, "lambda", "lambda", private),
            "report": place(names.REPORT_FUNCTION, "lambda", "lambda", private),
            "db": place(names.db_instance_id(lab), "rds", "rds", private)}


def _paths(port: int, region: str, you: rx.Node = rx.YOUR_COMPUTER) -> list[tuple[str, str, Callable[..., rx.Verdict]]]:
    return [
        (f"your computer -> app :{port}", "app", lambda net, n: rx.connect(net, you, n["app"], port)),
        ("app -> Lambda API", "app", lambda net, n: rx.api_path(net, n["app"], "lambda", region)),
        ("app instance -> Secrets Manager", "app", lambda net, n: rx.api_path(net, n["app"], "secretsmanager", region)),
        ("order-validator -> Secrets Manager", "validator",
         lambda net, n: rx.api_path(net, n["validator"], "secretsmanager", region)),
        ("order-validator -> RDS :3306", "validator+db", lambda net, n: rx.connect(net, n["validator"], n["db"], 3306)),
        ("daily-delta -> RDS :3306", "report+db", lambda net, n: rx.connect(net, n["report"], n["db"], 3306)),
        ("daily-delta -> S3", "report", lambda net, n: rx.api_path(net, n["report"], "s3", region)),
        ("app instance -> RDS :3306", "app+db", lambda net, n: rx.connect(net, n["app"], n["db"], 3306)),
        ("your computer -> RDS :3306", "db", lambda net, n: rx.connect(net, you, n["db"], 3306)),
    ]


def reachability_frame(lab: Lab, path_prefix: str = "") -> pd.DataFrame:
    """One row per path of the system (those starting with ``path_prefix``): allowed or blocked, why, and
    whether the parts are judged as built or where the lab will put them."""
    vpcs = lab.client("ec2").describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    net = rx.Network.describe(lab.client("ec2"), [v["VpcId"] for v in vpcs]) if vpcs else rx.Network()
    built = lab_nodes(lab, net)
    planned = planned_nodes(lab, net) if vpcs and None in built.values() else dict.fromkeys(built)
    address, unknown = myip.lookup(lab)
    rows: list[dict[str, Any]] = []
    for path, needs, decide in _paths(lab.config.app_port, lab.region, rx.your_computer(address)):
        if not path.startswith(path_prefix):
            continue
        parts = needs.split("+")
        nodes = {n: built[n] or planned[n] for n in built}
        missing = [n for n in parts if nodes[n] is None]
        if missing:
            rows.append({"path": path, "allowed": None, "because": f"not built yet ({', '.join(missing)})",
                         "as": None})
            continue
        verdict = decide(net, nodes)
        because = verdict.reason
        if unknown and not verdict.allowed and path.startswith("your computer"):
            because = f"{because}; {unknown}"
        rows.append({"path": path, "allowed": verdict.allowed, "because": because,
                     "as": PLANNED if any(built[n] is None for n in parts) else BUILT})
    return pd.DataFrame(rows, columns=COLUMNS)


def function_paths_frame(lab: Lab, function: str) -> pd.DataFrame:
    """The paths a copy of order-validator needs, for ``function`` where it sits now (its subnets and groups):
    to Secrets Manager and to the database's port, allowed or blocked and why."""
    vpcs = lab.client("ec2").describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    net = rx.Network.describe(lab.client("ec2"), [v["VpcId"] for v in vpcs]) if vpcs else rx.Network()
    node = _function(lab, net, function)
    db = describe_db_instance(lab)
    missing = rx.Verdict(False, f"{function} does not exist")
    to_secrets = rx.api_path(net, node, "secretsmanager", lab.region) if node else missing
    to_db = (rx.connect(net, node, rx.db_node(net, db), 3306) if db else rx.Verdict(False, "not built yet (db)")
             ) if node else missing
    rows = [{"path": path, "allowed": verdict.allowed, "because": verdict.reason}
            for path, verdict in ((f"{function} -> Secrets Manager", to_secrets), (f"{function} -> RDS :3306", to_db))]
    return pd.DataFrame(rows, columns=COLUMNS[:3])  # where the function sits now: always as built

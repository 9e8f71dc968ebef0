"""The system's architecture as a matplotlib figure, drawn from the lab's live configuration.

What exists is labelled as AWS describes it (CIDRs, instance type, the database endpoint, the bucket, the rule's
schedule, the VPC endpoints' ids); what is not built yet keeps its planned name and is drawn dashed. Network paths
(blue) run along the gaps between the boxes, never through one but the internet gateway they cross; the app's call
to Lambda leaves the VPC there, to the Lambda API, as EventBridge's comes from outside: Lambda runs the functions
(grey, dotted), which reach the VPC through their network interfaces in the private subnets. The two VPC
endpoints (yellow, as the legend says) sit on the VPC's edge where the Lambdas' traffic leaves it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit import names, network, schedule
from labkit.errors import if_exists
from labkit.lookups import describe_db_instance, describe_instance, function_configuration
from labkit.session import Lab

INK, MUTED, ARROW, RUNS = "#1d2433", "#5b6478", "#2155d6", "#7a8294"
ENDPOINT = "#ffd84d"  # the VPC endpoints: the legend names this colour (yellow)
ENDPOINT_COLOUR = "yellow"
# key: (x, y, width, height, fill) in axes fractions; containers are dashed, the rest are parts of the system.
CONTAINERS = {"vpc": (0.15, 0.02, 0.58, 0.84, "#f5f8ff"), "public": (0.17, 0.67, 0.54, 0.15, "#eaf6ee"),
              "private": (0.17, 0.04, 0.54, 0.59, "#fdf1e7")}
BOXES = {
    "internet": (0.44, 0.925, 0.26, 0.065, "#e8ecf4"),
    "igw": (0.36, 0.835, 0.30, 0.05, "#e8ecf4"),
    "ec2": (0.35, 0.69, 0.26, 0.10, "#ffffff"),
    "lambda_api": (0.005, 0.585, 0.125, 0.15, "#ffffff"),
    "report": (0.19, 0.35, 0.22, 0.12, "#ffffff"),
    "validator": (0.45, 0.35, 0.22, 0.12, "#ffffff"),
    "rds": (0.23, 0.11, 0.36, 0.13, "#ffffff"),
    "sm_endpoint": (0.655, 0.525, 0.15, 0.085, ENDPOINT),
    "s3_endpoint": (0.655, 0.025, 0.15, 0.085, ENDPOINT),
    "secrets": (0.835, 0.51, 0.16, 0.115, "#ffffff"),
    "s3": (0.835, 0.01, 0.16, 0.115, "#ffffff"),
    "events": (0.005, 0.35, 0.125, 0.12, "#ffffff"),
}
SMALL = ("sm_endpoint", "s3_endpoint", "igw", "lambda_api")
# Network paths, blue: the points each runs through (axes fractions), its label and where the label sits. They
# run along the gaps between the boxes; the two that cross the internet gateway pass under it. The app's call to
# Lambda leaves the VPC there, to the Lambda API outside it (the path table's "app -> Lambda API"): no call from
# the app enters the private subnets.
ARROWS = {
    "http": ([(0.55, 0.925), (0.55, 0.79)], "HTTP :{port}", (0.56, 0.80), "left"),
    "invoke": ([(0.40, 0.79), (0.40, 0.945), (0.0675, 0.945), (0.0675, 0.735)],
               "invoke (Lambda API, out through the internet gateway)", (0.075, 0.95), "left"),
    "schedule": ([(0.0675, 0.47), (0.0675, 0.585)], "invoke", (0.075, 0.51), "left"),
    "credentials": ([(0.62, 0.47), (0.62, 0.567), (0.655, 0.567)], "credentials", (0.61, 0.49), "right"),
    "secrets": ([(0.805, 0.567), (0.835, 0.567)], "", None, ""),
    "insert": ([(0.49, 0.35), (0.49, 0.24)], "INSERT", (0.50, 0.285), "left"),
    "select": ([(0.34, 0.35), (0.34, 0.24)], "SELECT", (0.33, 0.285), "right"),
    "csv": ([(0.22, 0.35), (0.22, 0.0675), (0.655, 0.0675)], "CSV report (PutObject)", (0.40, 0.072), "center"),
    "s3": ([(0.805, 0.0675), (0.835, 0.0675)], "", None, ""),
}
# Grey, dotted: Lambda runs the functions; they reach the VPC through their network interfaces in the private
# subnets (no traffic from the app or EventBridge goes this way).
RUNS_LINES = {
    "runs-report": [(0.13, 0.65), (0.30, 0.65), (0.30, 0.47)],
    "runs-validator": [(0.30, 0.65), (0.51, 0.65), (0.51, 0.47)],
}
ARROW_ENDS = {"http": ("internet", "ec2"), "invoke": ("ec2", "lambda_api"), "schedule": ("events", "lambda_api"),
              "credentials": ("validator", "sm_endpoint"), "secrets": ("sm_endpoint", "secrets"),
              "insert": ("validator", "rds"), "select": ("report", "rds"), "csv": ("report", "s3_endpoint"),
              "s3": ("s3_endpoint", "s3"), "runs-report": ("lambda_api", "report"),
              "runs-validator": ("lambda_api", "validator")}
THROUGH = {"http": ("igw",), "invoke": ("igw",)}  # the gateway these paths cross


@dataclass
class Part:
    label: str
    built: bool


def _wrap(text: str, width: int = 22) -> str:
    """Break a long AWS name at its dashes or dots so it fits its box (never cut)."""
    lines, line = [], ""
    for piece in text.replace(".", ".\0").replace("-", "-\0").split("\0"):
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    return "\n".join(lines + [line])


def _facts(lab: Lab) -> dict[str, Part]:
    """Each part's label from what AWS reports now, or its planned name when it is not built yet."""
    ec2 = lab.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=lab.tag_filter())["Vpcs"]
    subnets = ec2.describe_subnets(Filters=lab.tag_filter())["Subnets"]
    cidrs = {public: sorted(s["CidrBlock"] for s in subnets if bool(s.get("MapPublicIpOnLaunch")) == public)
             for public in (True, False)}
    planned = {public: sorted(c for c, _, p in network.SUBNETS.values() if p == public) for public in (True, False)}
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]}]
                                           )["VpcEndpoints"] if vpcs else []
    by_service = {e["ServiceName"].rsplit(".", 1)[-1]: e["VpcEndpointId"] for e in endpoints}
    gateways = ec2.describe_internet_gateways(Filters=lab.tag_filter())["InternetGateways"]
    instance, db = describe_instance(lab), describe_db_instance(lab)
    rule = if_exists(lambda: lab.client("events").describe_rule(Name=names.rule_name(lab)), "reading the rule")
    bucket = names.bucket_name(lab)
    has_bucket = bool(if_exists(lambda: lab.client("s3").head_bucket(Bucket=bucket), "reading the bucket"))
    secret = if_exists(lambda: lab.client("secretsmanager").describe_secret(SecretId=names.SECRET_NAME),
                       "reading the secret")
    endpoint = (db or {}).get("Endpoint") or {}
    port = lab.config.app_port
    aws_db = lab.target.aws_name("db", names.lab_resource(lab, "db"))
    return {
        "vpc": Part(f"VPC {vpcs[0]['CidrBlock'] if vpcs else network.VPC_CIDR}  ({names.lab_resource(lab, 'vpc')})",
                    bool(vpcs)),
        "public": Part("public subnets " + ", ".join(cidrs[True] or planned[True]), bool(cidrs[True])),
        "private": Part("private subnets " + ", ".join(cidrs[False] or planned[False])
                        + f"  (DB subnet group {network.DB_SUBNET_GROUP})", bool(cidrs[False])),
        "internet": Part("Internet (your browser)", True),
        "igw": Part("internet gateway " + (gateways[0]["InternetGatewayId"] if gateways else "(not created yet)"),
                    bool(gateways)),
        "lambda_api": Part("AWS Lambda\n(the service,\noutside your VPC)\n"
                           + f"lambda.{lab.region}.\namazonaws.com", True),
        "ec2": Part(f"EC2 {instance['InstanceType'] if instance else names.INSTANCE_TYPE}: Flask app :{port}\n"
                    + (instance["InstanceId"] if instance else "(not launched yet)"), bool(instance)),
        "validator": Part(f"Lambda\n{names.VALIDATOR_FUNCTION}",
                          bool(function_configuration(lab, names.VALIDATOR_FUNCTION))),
        "report": Part(f"Lambda\n{names.REPORT_FUNCTION}", bool(function_configuration(lab, names.REPORT_FUNCTION))),
        "rds": Part(f"RDS MySQL {names.lab_resource(lab, 'db')}\ndatabase ordersdb"
                    + (f"\nendpoint {endpoint['Address']}:{endpoint['Port']}" if endpoint else "\n(not created yet)")
                    + (f"\n(on AWS a DNS name like {aws_db})" if endpoint and aws_db else ""),
                    bool(db)),
        "sm_endpoint": Part("interface endpoint\n" + by_service.get("secretsmanager", "(not created yet)")
                            + "\nprivate DNS", "secretsmanager" in by_service),
        "s3_endpoint": Part("gateway endpoint\n" + by_service.get("s3", "(not created yet)"), "s3" in by_service),
        "secrets": Part(f"Secrets Manager\n{names.SECRET_NAME}", bool(secret)),
        "s3": Part("S3 bucket\n" + _wrap(bucket), has_bucket),
        "events": Part("EventBridge\n" + _wrap(names.rule_name(lab), 14) + "\n"
                       + (rule or {}).get("ScheduleExpression", schedule.SCHEDULE), bool(rule)),
    }


def architecture_figure(lab: Lab) -> Any:
    """Boxes for each part of the system as this lab has it now; dashed grey for what is not built yet."""
    return draw(_facts(lab), f"Automated Order Processing System — lab '{lab.name}' on the {lab.config.target} target",
                lab.config.app_port)


def draw(parts: dict[str, Part], title: str, port: int) -> Any:
    """The figure for ``parts`` (every key of CONTAINERS and BOXES): boxes, the network paths, the dotted lines of
    what Lambda runs, and a legend that names every colour it uses."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    from matplotlib.path import Path as MplPath

    fig, ax = plt.subplots(figsize=(13, 7.8))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    for key, (x, y, w, h, fill) in CONTAINERS.items():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.003,rounding_size=0.01", facecolor=fill,
                                    edgecolor="#8a94a8", linewidth=1, linestyle="--"))
        ax.text(x + 0.01, y + h - 0.012, parts[key].label, va="top", ha="left", fontsize=8.5, color=MUTED, zorder=2.5,
                bbox={"facecolor": fill, "edgecolor": "none", "pad": 1})  # the dotted lines pass behind it
    for key, (x, y, w, h, fill) in BOXES.items():
        built = parts[key].built
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.003,rounding_size=0.01",
                                    facecolor=fill if built else "#f4f4f4", edgecolor=INK if built else "#9aa1ad",
                                    linewidth=1.4, linestyle="-" if built else "--", zorder=3, gid=key))
        ax.text(x + w / 2, y + h / 2, parts[key].label, va="center", ha="center", zorder=4,
                fontsize=7.5 if key in SMALL else 8.5, color=INK if built else MUTED)

    def line(points: list[tuple[float, float]], **style: Any) -> None:
        codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1)
        ax.add_patch(FancyArrowPatch(path=MplPath(points, codes), mutation_scale=12, zorder=2, **style))

    for name, (points, label, at, align) in ARROWS.items():
        line(points, arrowstyle="-|>", color=ARROW, linewidth=1.4, gid=name)
        if label and at is not None:
            ax.text(at[0], at[1], label.format(port=port), fontsize=8, color=ARROW, ha=align, va="bottom", zorder=5)
    for name, points in RUNS_LINES.items():
        line(points, arrowstyle="-|>", color=RUNS, linewidth=1.1, linestyle=(0, (2, 2)), gid=name)
    ax.text(0.175, 0.652, "runs", fontsize=8, color=RUNS, ha="left", va="bottom", zorder=5)
    legend = [Line2D([], [], color=ARROW, linewidth=1.4, label="a network path (TCP, or HTTPS to an AWS API)"),
              Line2D([], [], color=RUNS, linewidth=1.1, linestyle=(0, (2, 2)),
                     label="Lambda runs the function (its network interfaces are in the private subnets)"),
              Patch(facecolor=ENDPOINT, edgecolor=INK,
                    label=f"{ENDPOINT_COLOUR}: a VPC endpoint, the Lambdas' only way to Secrets Manager and S3"),
              Patch(facecolor="#f4f4f4", edgecolor="#9aa1ad", linestyle="--", label="not built yet")]
    fig.legend(handles=legend, loc="lower left", bbox_to_anchor=(0.15, 0.0), ncol=2, fontsize=8, frameon=False,
               labelcolor=MUTED)
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.94, bottom=0.10)
    return fig

"""The system's architecture as a matplotlib figure, labelled from the lab's configuration."""
from __future__ import annotations

from labkit import iam, network, schedule
from labkit.session import Lab

BOXES = {  # key: (x, y, width, height, colour)
    "internet": (0.38, 0.90, 0.24, 0.07, "#e8ecf4"),
    "vpc": (0.03, 0.05, 0.70, 0.80, "#f5f8ff"),
    "public": (0.06, 0.58, 0.64, 0.22, "#eaf6ee"),
    "private": (0.06, 0.10, 0.64, 0.44, "#fdf1e7"),
    "ec2": (0.22, 0.63, 0.30, 0.12, "#ffffff"),
    "validator": (0.09, 0.36, 0.27, 0.12, "#ffffff"),
    "report": (0.41, 0.36, 0.27, 0.12, "#ffffff"),
    "rds": (0.22, 0.14, 0.30, 0.12, "#ffffff"),
    "secrets": (0.77, 0.58, 0.21, 0.12, "#ffffff"),
    "s3": (0.77, 0.36, 0.21, 0.12, "#ffffff"),
    "events": (0.77, 0.14, 0.21, 0.12, "#ffffff"),
}
ARROWS = [("internet", "ec2", "HTTP :{port}", 0.0), ("ec2", "validator", "invoke", 0.0),
          ("validator", "rds", "INSERT", 0.0), ("report", "rds", "SELECT", 0.0),
          ("validator", "secrets", "credentials", -0.25), ("report", "s3", "CSV", 0.0),
          ("events", "report", "every 24 h", 0.0)]


def _centre(key: str) -> tuple[float, float]:
    x, y, w, h, _ = BOXES[key]
    return x + w / 2, y + h / 2


def architecture_figure(lab: Lab):
    """Boxes for each part of the system, named as this lab names them."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    labels = {
        "internet": "Internet (your browser)",
        "vpc": f"VPC {network.VPC_CIDR}  ({lab.name}-vpc)",
        "public": "public subnets 10.0.1.0/24, 10.0.2.0/24",
        "private": f"private subnets 10.0.11.0/24, 10.0.12.0/24  (DB subnet group {network.DB_SUBNET_GROUP})",
        "ec2": f"EC2 t3.micro\nFlask app :{lab.config.app_port}",
        "validator": f"Lambda\n{iam.VALIDATOR_FUNCTION}",
        "report": f"Lambda\n{iam.REPORT_FUNCTION}",
        "rds": f"RDS MySQL\n{lab.name}-db / ordersdb",
        "secrets": f"Secrets Manager\n{iam.SECRET_NAME}",
        "s3": f"S3\n{lab.name}-reports-…",
        "events": f"EventBridge\n{schedule.rule_name(lab)}",
    }
    fig, ax = plt.subplots(figsize=(11, 6.5))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    for key, (x, y, w, h, colour) in BOXES.items():
        container = key in ("vpc", "public", "private")
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.005,rounding_size=0.01",
                                    facecolor=colour, edgecolor="#8a94a8" if container else "#1d2433",
                                    linewidth=1 if container else 1.4, linestyle="--" if container else "-"))
        if container:
            ax.text(x + 0.01, y + h - 0.01, labels[key], va="top", ha="left", fontsize=8.5, color="#5b6478")
        else:
            ax.text(x + w / 2, y + h / 2, labels[key], va="center", ha="center", fontsize=9.5)
    for start, end, label, bend in ARROWS:
        (x1, y1), (x2, y2) = _centre(start), _centre(end)
        if bend:  # leave over the top of the boxes in between
            y1, y2 = BOXES[start][1] + BOXES[start][3], _centre(end)[1]
            x2 = BOXES[end][0]
        ax.annotate("", xy=(x2, y2), xytext=(x1, y1),
                    arrowprops={"arrowstyle": "-|>", "color": "#2155d6", "lw": 1.4, "shrinkA": 4 if bend else 28,
                                "shrinkB": 2 if bend else 28, "connectionstyle": f"arc3,rad={bend}"})
        mid_y = (y1 + y2) / 2 + (0.07 if bend else 0)
        ax.text((x1 + x2) / 2, mid_y, label.format(port=lab.config.app_port), fontsize=8,
                color="#2155d6", ha="center", va="bottom", backgroundcolor="white")
    ax.text(0.03, 0.005, "VPC endpoints keep the Lambdas' traffic to S3 (gateway) and Secrets Manager (interface) "
                         "inside the VPC", fontsize=8, color="#5b6478")
    ax.set_title(f"Automated Order Processing System — lab '{lab.name}' on the {lab.config.target} target",
                 fontsize=11)
    return fig

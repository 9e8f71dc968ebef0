"""What the lab costs per hour on AWS, from a dated static price table (on-demand, Linux, no free tier)."""
from __future__ import annotations

from typing import Any

import pandas as pd

PRICES_DATED = "2026-11-01"
PRICE_REGION = "us-east-1"
# The free tier depends on when the account was made: since 2025-07-15 the Free plan (credits, no hours); before,
# the legacy 12-month offers.
FREE_TIER = ("free tier: accounts made since 2025-07-15 get credits (the Free plan: up to $200 for up to 6 months), "
             "not free hours; older accounts: 750 h/month for their first 12 months")
# (resource, quantity, unit price in USD per hour, note)
HOURLY = [
    ("EC2 t3.micro instance", 1, 0.0104, f"{FREE_TIER}; T3 runs 'unlimited' by default: above the 10% CPU "
                                         "baseline, $0.05 per vCPU-hour of surplus credits (Linux)"),
    ("EBS gp2 root volume, 8 GB", 8, 0.10 / 730, "per GB-month (Canonical's ebs-gp2 image: gp2, not gp3 at $0.08)"),
    ("Public IPv4 address", 1, 0.005, "every public IPv4 address"),
    ("RDS db.t3.micro MySQL, single-AZ", 1, 0.017, f"{FREE_TIER}; RDS T3 classes run 'unlimited': above the "
                                                   "baseline, $0.075 per vCPU-hour of surplus credits"),
    ("RDS gp2 storage, 20 GB", 20, 0.115 / 730, "per GB-month"),
    ("VPC interface endpoint (Secrets Manager), 2 AZs", 2, 0.01, "per AZ-hour, plus $0.01/GB processed"),
    ("VPC gateway endpoint (S3)", 1, 0.0, "free"),
    ("Secrets Manager secret", 1, 0.40 / 730, "per secret-month, plus API calls"),
    ("Lambda, S3, EventBridge, CloudWatch Logs", 1, 0.0, "pennies at lab volumes"),
]


def cost_frame(region: str = PRICE_REGION) -> pd.DataFrame:
    """The hourly cost of everything the lab creates, with a total row."""
    rows: list[dict[str, Any]] = [{"resource": r, "quantity": q, "USD per hour": round(q * p, 4), "note": n} for r, q, p, n in HOURLY]
    total = sum(row["USD per hour"] for row in rows)
    rows.append({"resource": "total (without free tier)", "quantity": "", "USD per hour": round(total, 4),
                 "note": f"about ${total * 24:.2f} per day; prices of {PRICES_DATED} in {PRICE_REGION}"
                         + ("" if region == PRICE_REGION else f"; {region} may differ")})
    return pd.DataFrame(rows)

"""The tutorial's eight learning outcomes, and where in the series a student sees each one.

Each notebook names the outcomes it serves under its title ("**Learning outcomes:** ..."); ``WHERE`` is the one
map of them, so the recap at the end of ``14_verification`` (:func:`recap_frame`) and the notebooks agree (a test
compares them).
"""
from __future__ import annotations

import pandas as pd

__all__ = ["OUTCOMES", "WHERE", "outcomes_of", "recap_frame"]

# The tutorial's "Key Learning Outcomes", in its order.
OUTCOMES = ("VPC architecture design", "Secure database deployment", "Lambda VPC networking", "IAM role management",
            "Secrets management", "Serverless automation", "EventBridge scheduling", "S3 integration")

# outcome -> (notebook, what the student did or saw there), in the series' order.
WHERE: dict[str, list[tuple[str, str]]] = {
    "VPC architecture design": [
        ("01_create_vpc", "public and private subnets in two Availability Zones; the route table that makes a subnet "
                          "public; the internet gateway; VPC endpoints instead of a NAT gateway"),
        ("03_security_groups", "security groups that admit by group (the app tier), not by address"),
        ("05_launch_ec2", "an instance in a public subnet, reached by SSM instead of SSH"),
        ("07_app_dependencies", "the instance reaching PyPI through the internet gateway"),
        ("08_flask_app", "why your browser gets through: public IP, route and rule, in the path table"),
        ("99_teardown", "the order in which a VPC's parts can go: what depends on what"),
    ],
    "Secure database deployment": [
        ("02_rds_subnet_group", "a DB subnet group of private subnets only, across two Availability Zones"),
        ("03_security_groups", "rds-mysql-sg: 3306 from the app instance's and the Lambdas' groups only"),
        ("04_rds_database", "Public access: No, storage encrypted, a generated password; your computer's connection "
                            "goes unanswered"),
        ("06_connect_ec2_to_rds", "the schema applied from inside the VPC, the password never on a command line"),
        ("15_troubleshooting", "case 4: a caller the RDS group does not admit waits, then MySQL error 2003"),
    ],
    "Lambda VPC networking": [
        ("01_create_vpc", "the Secrets Manager interface endpoint and the S3 gateway endpoint the Lambdas need"),
        ("10_lambda_order_validator", "order-validator in the private subnets with lambda-sg"),
        ("12_lambda_daily_report", "the report function reaching S3 through the gateway endpoint"),
        ("15_troubleshooting", "cases 2, 4 and 5: a dropped path, a database port, the role's network interfaces"),
    ],
    "IAM role management": [
        ("05_launch_ec2", "an instance profile; a role's trust policy and its permissions"),
        ("10_lambda_order_validator", "an execution role and its session in the API history"),
        ("12_lambda_daily_report", "your least-privilege policy for the report function, proved with the API history"),
        ("15_troubleshooting", "cases 5 and 6: AWSLambdaVPCAccessExecutionRole, an AccessDenied fixed with the least "
                               "privilege"),
        ("99_teardown", "why the roles go last"),
    ],
    "Secrets management": [
        ("04_rds_database", "the master password generated and stored only in Secrets Manager"),
        ("09_secrets_manager", "the RDS-credentials secret, its versions, read without printing a value"),
        ("10_lambda_order_validator", "the function reading the secret at run time; who read it, in the API history"),
        ("15_troubleshooting", "cases 3 and 6: a secret in the wrong shape; a role that may not read it"),
    ],
    "Serverless automation": [
        ("08_flask_app", "the app hands every order to a Lambda"),
        ("10_lambda_order_validator", "order-validator validates and stores each order exactly once"),
        ("12_lambda_daily_report", "the report function writes each window's orders to S3"),
        ("13_eventbridge_schedule", "the report runs by itself on a schedule"),
        ("14_verification", "the whole system, checked end to end"),
    ],
    "EventBridge scheduling": [
        ("13_eventbridge_schedule", "a scheduled rule, its target and the Lambda permission; EventBridge Scheduler, "
                                    "what AWS now recommends"),
        ("14_verification", "a day passing on the lab clock and the scheduled run in the logs"),
    ],
    "S3 integration": [
        ("11_s3_bucket", "a private, encrypted bucket with a lifecycle rule"),
        ("12_lambda_daily_report", "the CSV report and its day-over-day change written to S3"),
        ("14_verification", "the report read back from S3 into pandas"),
    ],
}


def outcomes_of(notebook: str) -> list[str]:
    """The outcomes ``notebook`` (e.g. ``"01_create_vpc"``) serves, in the tutorial's order."""
    return [outcome for outcome in OUTCOMES if any(nb == notebook for nb, _ in WHERE[outcome])]


def recap_frame() -> pd.DataFrame:
    """Each of the eight outcomes with where you met it: one row per (outcome, notebook)."""
    rows = [{"outcome": f"{n}. {outcome}" if i == 0 else "", "notebook": notebook, "what you did there": what}
            for n, outcome in enumerate(OUTCOMES, 1) for i, (notebook, what) in enumerate(WHERE[outcome])]
    return pd.DataFrame(rows, columns=["outcome", "notebook", "what you did there"])

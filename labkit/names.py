"""The lab's resource names and the step catalogue: the bottom layer every labkit module may import.

The tutorial fixes some names for the whole account and region (the roles, the functions, the secret, the
DB subnet group); everything else carries the lab's name, so labs can live side by side. This module calls
no AWS API and imports no step module, so step modules never need to import each other for a name.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - types only
    from labkit.session import Lab

# -- names the tutorial fixes (one per account and region) ------------------------------------------------
DB_SUBNET_GROUP = "order-processing-app-SG"
SG_NAMES = {"ec2": "ec2-app-sg", "lambda": "lambda-sg", "rds": "rds-mysql-sg", "endpoints": "vpc-endpoints-sg"}
DB_NAME = "ordersdb"
EC2_ROLE = "EC2-Secrets-Manager-Access-Role"
VALIDATOR_ROLE = "order-app-lambda-role"
REPORT_ROLE = "lambda-daily-delta-task-role"
ROLES = (EC2_ROLE, VALIDATOR_ROLE, REPORT_ROLE)
SECRET_NAME = "order-db-secret"
VALIDATOR_FUNCTION = "order-validator"
REPORT_FUNCTION = "daily-delta-processor"
VALIDATOR_TIMEOUT = 30  # seconds: outlasts the code's own waits (5 s to the database), so failures say why
REPORT_TIMEOUT = 300
FUNCTIONS = (VALIDATOR_FUNCTION, REPORT_FUNCTION)
PROBE_CASES = ("no-layer", "timeout", "rds", "secret", "no-vpc-access", "no-secret-access", "nacl")
SUBNET_KEYS = ("public-a", "public-b", "private-a", "private-b")
INSTANCE_TYPE = "t3.micro"
DB_INSTANCE_CLASS = "db.t3.micro"  # free-tier eligible
DB_ENGINE = "mysql"
# The pinned major version: MySQL 8.4 (LTS). Its login plugin is caching_sha2_password, which needs TLS (or
# RSA, hence `cryptography` in the layer) on a cold cache. The minor version is RDS's default for 8.4.
DB_PARAMETER_GROUP_FAMILY = "mysql8.4"


# -- names that carry the lab's name ----------------------------------------------------------------------
def lab_resource(lab: Lab, suffix: str) -> str:
    """The Name tag of a lab resource, e.g. ``orders-lab-vpc``."""
    return f"{lab.name}-{suffix}"


def db_instance_id(lab: Lab) -> str:
    return lab_resource(lab, "db")


def instance_name(lab: Lab) -> str:
    """The Name tag of the app's EC2 instance."""
    return lab_resource(lab, "app")


def layer_name(lab: Lab) -> str:
    return lab_resource(lab, "pymysql")


def rule_name(lab: Lab) -> str:
    return lab_resource(lab, "daily-delta")


def probe_name(lab: Lab, case: str) -> str:
    """A troubleshooting probe (a function, or the probe secret)."""
    return lab_resource(lab, f"probe-{case}")


BUCKET_MAX = 63  # S3's general purpose bucket naming rules: 3-63 characters, a letter or digit at each end, ...
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")  # ... and none of these prefixes


def bucket_name(lab: Lab) -> str:
    """Globally unique, stable and valid: ``<lab>-reports-<account>-<region>``, the account and region whole.

    When that is longer than S3's 63 characters (a long lab name in a long region's name) or starts with a prefix
    S3 reserves, the lab name is shortened and followed by 8 hex digits of its hash: cutting the whole name at 63
    could end in ``-`` (InvalidBucketName) or drop the region, so that two labs would share one bucket."""
    tail = f"-reports-{lab.account_id}-{lab.region}"
    name = lab.name + tail
    if len(name) <= BUCKET_MAX and not name.startswith(RESERVED_BUCKET_PREFIXES):
        return name
    digest = hashlib.sha256(lab.name.encode()).hexdigest()[:8]
    head = ("lab-" if lab.name.startswith(RESERVED_BUCKET_PREFIXES) else "") + lab.name
    head = head[:BUCKET_MAX - len(tail) - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}{tail}"


def log_group(function: str) -> str:
    return f"/aws/lambda/{function}"


# -- the tutorial's steps: number -> (title, notebook) ------------------------------------------------------
STEP_NOTEBOOKS: dict[int, tuple[str, str]] = {
    1: ("Create VPC", "01_create_vpc"),
    2: ("Create RDS Subnet Group", "02_rds_subnet_group"),
    3: ("Create Security Groups", "03_security_groups"),
    4: ("Create RDS Database", "04_rds_database"),
    5: ("Launch EC2 Instance", "05_launch_ec2"),
    6: ("Connect EC2 to RDS", "06_connect_ec2_to_rds"),
    7: ("Install Application Dependencies on EC2", "07_app_dependencies"),
    8: ("Add Flask Application Code", "08_flask_app"),
    9: ("Configure AWS Secrets Manager", "09_secrets_manager"),
    10: ("Create Lambda - Order Validator", "10_lambda_order_validator"),
    11: ("Create S3 Bucket", "11_s3_bucket"),
    12: ("Create Lambda - Daily Report Generator", "12_lambda_daily_report"),
    13: ("Create EventBridge Rule", "13_eventbridge_schedule"),
}


def notebook(step: int) -> str:
    """The notebook of ``step``, e.g. ``03_security_groups``."""
    return STEP_NOTEBOOKS[step][1]


def step_ref(step: int) -> str:
    """How a hint names a step: ``step 3 (notebook 03_security_groups)``."""
    return f"step {step} (notebook {notebook(step)})"


def run_first(step: int) -> str:
    """The fix hint for "an earlier step has not run": names the step and its notebook."""
    return f"run {step_ref(step)} first"


# -- where each step is in the AWS console (the local cloud has no console: these are AWS's) ---------------
CONSOLE = "https://console.aws.amazon.com"
STEP_CONSOLE: dict[int, tuple[str, str]] = {
    1: ("VPC > Your VPCs > Create VPC (\"VPC and more\": subnets, route tables, internet gateway, endpoints)",
        "/vpcconsole/home?region={region}#vpcs:"),
    2: ("RDS > Subnet groups > Create DB subnet group", "/rds/home?region={region}#db-subnet-groups-list:"),
    3: ("VPC > Security groups > Create security group (then Inbound rules > Edit inbound rules)",
        "/vpcconsole/home?region={region}#SecurityGroups:"),
    4: ("RDS > Databases > Create database (Standard create, MySQL, Free tier)", "/rds/home?region={region}#databases:"),
    5: ("IAM > Roles > Create role; then EC2 > Instances > Launch instances", "/ec2/home?region={region}#Instances:"),
    6: ("Systems Manager > Run Command > Run command (AWS-RunShellScript on the instance)",
        "/systems-manager/run-command?region={region}"),
    7: ("Systems Manager > Run Command > Run command (AWS-RunShellScript on the instance)",
        "/systems-manager/run-command?region={region}"),
    8: ("Systems Manager > Run Command > Run command (AWS-RunShellScript on the instance)",
        "/systems-manager/run-command?region={region}"),
    9: ("Secrets Manager > Store a new secret > Credentials for Amazon RDS database",
        "/secretsmanager/listsecrets?region={region}"),
    10: ("Lambda > Functions > Create function; Lambda > Layers > Create layer; the function's "
         "Configuration > VPC", "/lambda/home?region={region}#/functions"),
    11: ("S3 > Buckets > Create bucket (General purpose)", "/s3/buckets?region={region}"),
    12: ("Lambda > Functions > Create function; the function's Configuration > VPC",
         "/lambda/home?region={region}#/functions"),
    13: ("EventBridge > Rules > Create rule (Schedule; target: Lambda function)", "/events/home?region={region}#/rules"),
}


def console_path(step: int, region: str = "us-east-1") -> str:
    """Where ``step`` is done by hand in the AWS console: the menu path and the page's address."""
    path, url = STEP_CONSOLE[step]
    return f"{path} ({CONSOLE}{url.format(region=region)})"

"""The thirteen steps of the tutorial, in order, as a small registry: number -> title, notebook, function."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from labkit import compute, database, functions, network, schedule, secrets, storage
from labkit.errors import LabkitError, StepError
from labkit.session import Lab


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    notebook: str
    run: Callable[[Lab], Any]


STEPS: dict[int, Step] = {s.number: s for s in (
    Step(1, "Create VPC", "01_create_vpc", network.create_vpc),
    Step(2, "Create RDS Subnet Group", "02_rds_subnet_group", network.create_db_subnet_group),
    Step(3, "Create Security Groups", "03_security_groups", network.create_security_groups),
    Step(4, "Create RDS Database", "04_rds_database", database.create_database),
    Step(5, "Launch EC2 Instance", "05_launch_ec2", compute.launch_instance),
    Step(6, "Connect EC2 to RDS", "06_connect_ec2_to_rds", database.create_orders_table),
    Step(7, "Install Application Dependencies on EC2", "07_app_dependencies", compute.install_app_dependencies),
    Step(8, "Add Flask Application Code", "08_flask_app", compute.deploy_app),
    Step(9, "Configure AWS Secrets Manager", "09_secrets_manager", secrets.create_db_secret),
    Step(10, "Create Lambda - Order Validator", "10_lambda_order_validator", functions.create_order_validator),
    Step(11, "Create S3 Bucket", "11_s3_bucket", storage.create_bucket),
    Step(12, "Create Lambda - Daily Report Generator", "12_lambda_daily_report", functions.create_daily_report_function),
    Step(13, "Create EventBridge Rule", "13_eventbridge_schedule", schedule.create_schedule),
)}


def steps_frame() -> "pd.DataFrame":
    """The thirteen steps and their notebooks."""
    import pandas as pd

    return pd.DataFrame([{"step": s.number, "title": s.title, "notebook": f"{s.notebook}.ipynb"}
                         for s in STEPS.values()])


def run_step(lab: Lab, number: int) -> Any:
    """Run one step; AWS's (or the local cloud's) refusal becomes a StepError naming the step."""
    step = STEPS[number]
    try:
        return step.run(lab)
    except LabkitError:
        raise
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StepError(number, f"{step.title}: AWS answered {error.get('Code')}: {error.get('Message')}",
                        f"fix the cause, then re-run the step (notebook {step.notebook}); steps are idempotent"
                        ) from exc
    except BotoCoreError as exc:
        raise StepError(number, f"{step.title}: {exc}", "check the endpoint or credentials, then re-run") from exc


def run_steps(lab: Lab, start: int = 1, through: int = 13, progress: Callable[[Step], None] | None = None) -> dict:
    results = {}
    for number in range(start, through + 1):
        if progress:
            progress(STEPS[number])
        results[number] = run_step(lab, number)
    return results

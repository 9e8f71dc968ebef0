"""The thirteen steps of the tutorial, in order, as a small registry: number -> title, notebook, function.

Titles and notebooks come from ``names.STEP_NOTEBOOKS`` (the bottom layer), so every fix hint that names a
step names the same notebook as this registry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from labkit import compute, database, functions, network, schedule, secretsmanager, storage
from labkit.errors import DENIED, LabkitError, StepError, error_code
from labkit.names import STEP_NOTEBOOKS
from labkit.session import Lab


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    notebook: str
    run: Callable[[Lab], Any]


RUN: dict[int, Callable[[Lab], Any]] = {
    1: network.create_vpc, 2: network.create_db_subnet_group, 3: network.create_security_groups,
    4: database.create_database, 5: compute.launch_instance, 6: database.create_orders_table,
    7: compute.install_app_dependencies, 8: compute.deploy_app, 9: secretsmanager.create_db_secret,
    10: functions.create_order_validator, 11: storage.create_bucket, 12: functions.create_daily_report_function,
    13: schedule.create_schedule,
}
STEPS: dict[int, Step] = {n: Step(n, title, notebook, RUN[n]) for n, (title, notebook) in STEP_NOTEBOOKS.items()}


def steps_frame() -> pd.DataFrame:
    """The thirteen steps and their notebooks."""
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
        hint = (f"the identity labkit uses may not do this: grant the action the message names, then re-run the "
                f"step (notebook {step.notebook})" if error_code(exc) in DENIED else
                f"fix the cause, then re-run the step (notebook {step.notebook}); steps are idempotent")
        raise StepError(number, f"{step.title}: AWS answered {error.get('Code')}: {error.get('Message')}", hint
                        ) from exc
    except BotoCoreError as exc:
        raise StepError(number, f"{step.title}: {exc}", "check the endpoint or credentials, then re-run") from exc


def run_steps(lab: Lab, start: int = 1, through: int = 13,
              progress: Callable[[Step], None] | None = None) -> dict[int, Any]:
    """Run steps ``start`` to ``through``; each step's result by its number."""
    results = {}
    for number in range(start, through + 1):
        if progress:
            progress(STEPS[number])
        results[number] = run_step(lab, number)
    return results

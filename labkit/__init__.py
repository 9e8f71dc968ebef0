"""labkit: build, check and tear down the Automated Order Processing System, step by step.

    import labkit
    lab = labkit.Lab(target="local")      # or "aws"
    labkit.up(lab, through=13)            # all thirteen steps, idempotently
"""
from __future__ import annotations

from labkit import display
from labkit.errors import AccessDenied, AddressUnknown, CheckFailed, CloudError, ConfigError, LabkitError, StepError
from labkit.session import Lab

__all__ = ["AccessDenied", "AddressUnknown", "CheckFailed", "CloudError", "ConfigError", "Lab", "LabkitError",
           "StepError", "up"]

display.install()  # in a notebook: every DataFrame in the lab's one style (labkit/display.py)


def up(lab: Lab, through: int = 13, start: int = 1) -> dict:
    """Run the steps ``start``..``through`` in order; every step is idempotent."""
    from labkit.steps import run_steps

    return run_steps(lab, start, through)

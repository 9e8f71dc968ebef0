"""labkit: build, check and tear down the Automated Order Processing System, step by step.

    import labkit
    lab = labkit.Lab(target="local")      # or "aws"
    labkit.up(lab, through=13)            # all thirteen steps, idempotently

``labkit.Lab`` and the submodules (``labkit.display``, ``labkit.compute``, ...) are imported when first
used: the local cloud's daemon is ``labkit.localcloud`` and needs neither boto3's sessions nor pandas,
which would otherwise sit in every lab's daemon (about 45 MiB).
"""
from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from labkit.errors import AccessDenied, AddressUnknown, CheckFailed, CloudError, ConfigError, LabkitError, StepError

if TYPE_CHECKING:
    from labkit.session import Lab

__all__ = ["AccessDenied", "AddressUnknown", "CheckFailed", "CloudError", "ConfigError", "Lab", "LabkitError",
           "StepError", "up"]


def __getattr__(name: str) -> Any:
    """``labkit.Lab`` and ``labkit.<submodule>``, imported on first use."""
    if name == "Lab":
        from labkit.session import Lab

        return Lab
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def up(lab: Lab, through: int = 13, start: int = 1) -> dict[int, Any]:
    """Run the steps ``start``..``through`` in order; every step is idempotent."""
    from labkit.steps import run_steps

    return run_steps(lab, start, through)


if "IPython" in sys.modules:  # in a notebook: every DataFrame in the lab's one style (labkit/display.py)
    importlib.import_module("labkit.display").install()

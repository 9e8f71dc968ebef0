"""One error root for labkit; narrow subclasses carry the context a student needs to fix things."""
from __future__ import annotations


class LabkitError(Exception):
    """Base of every error labkit raises on purpose.

    Attributes:
        hint: one sentence on how to fix it, shown after the message.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  How to fix: {self.hint}" if self.hint else base


class CloudError(LabkitError):
    """The local cloud could not be started, reached or stopped."""


class StepError(LabkitError):
    """A provisioning step failed; names the step and what AWS (or the local cloud) answered."""

    def __init__(self, step: int | str, message: str, hint: str | None = None) -> None:
        super().__init__(f"Step {step}: {message}", hint)
        self.step = step


class ConfigError(LabkitError):
    """The lab's configuration is invalid (unknown target, bad name, missing confirmation)."""


class CheckFailed(LabkitError):
    """A verification found the system not as it should be."""

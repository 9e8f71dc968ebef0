"""What EventBridge Scheduler refuses that its model does not say: a schedule expression it cannot read
(``ValidationException: Invalid Schedule Expression <expression>.``), a time zone that is not an IANA name, and a
flexible time window without its length (moto stores all three, and the schedule would then never fire)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labkit.localcloud.core.services import ApiRequest
from labkit.localcloud.core.validation import Adjust, Rule, ValidationFailed
from labkit.localcloud.events.scheduler_times import check, zone


def _schedule(given: dict[str, Any] | None, _call: ApiRequest) -> None:
    given = given or {}
    expression, timezone = given.get("ScheduleExpression"), given.get("ScheduleExpressionTimezone")
    if isinstance(timezone, str):
        try:
            zone(timezone)
        except ValueError:
            raise ValidationFailed(f"Invalid ScheduleExpressionTimezone {timezone}.") from None
    if isinstance(expression, str):
        try:
            check(expression, timezone if isinstance(timezone, str) else None)
        except ValueError:
            raise ValidationFailed(f"Invalid Schedule Expression {expression}.") from None
    window = given.get("FlexibleTimeWindow")
    if isinstance(window, dict) and window.get("Mode") == "FLEXIBLE" and window.get("MaximumWindowInMinutes") is None:
        raise ValidationFailed("MaximumWindowInMinutes is required when the flexible time window's Mode is FLEXIBLE.")


def rules() -> Iterable[Rule | Adjust]:
    return [Rule("scheduler", frozenset({"CreateSchedule", "UpdateSchedule"}), _schedule)]

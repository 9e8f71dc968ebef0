"""The local cloud's changes to moto's EventBridge and EventBridge Scheduler (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.clock import lab_utcnow
from labkit.localcloud.core.patches import Patch, hooked


def _update_keeps_all_of_the_request(original: Any) -> Any:
    """UpdateSchedule replaces the whole schedule (AWS: "all of the parameters ... are replaced with the values
    you provide; those you omit get their defaults"): moto forgets ``ActionAfterCompletion`` and leaves
    ``State`` empty when it is omitted."""
    def update_schedule(self: Any) -> str:
        answer: str = original(self)
        name = self.uri.split("?")[0].split("/")[-1]
        schedule = self.scheduler_backend.get_schedule(self._get_param("GroupName"), name)
        schedule.action_after_completion = self._get_param("ActionAfterCompletion") or "NONE"
        schedule.state = self._get_param("State") or "ENABLED"
        _registered(schedule)
        return answer
    return update_schedule


def _registered(schedule: Any) -> None:
    from labkit.localcloud.core.patches import find
    from labkit.localcloud.events.scheduler import SchedulerService

    service = find(SchedulerService)
    if service is not None:
        service.register(schedule)


def _action_defaults(original: Any) -> Any:
    """A schedule created without ``ActionAfterCompletion`` says ``NONE``, as AWS's GetSchedule does."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.action_after_completion = self.action_after_completion or "NONE"
    return __init__


def patches() -> list[Patch]:
    """The EventBridge and EventBridge Scheduler patches."""
    from moto.events import models as events
    from moto.scheduler import models as scheduler
    from moto.scheduler import responses as scheduler_responses

    from labkit.localcloud.events.scheduler import SchedulerService
    from labkit.localcloud.events.service import EventsService

    return [Patch(events.EventsBackend, "put_rule", "a scheduled rule is anchored on the lab clock when it is "
                  "put (AWS starts counting a rate from PutRule)", hooked(EventsService, "register")),
            Patch(scheduler.EventBridgeSchedulerBackend, "create_schedule", "a schedule is anchored on the lab clock "
                  "when it is created (a rate without StartDate starts then)", hooked(SchedulerService, "created")),
            Patch(scheduler_responses.EventBridgeSchedulerResponse, "update_schedule", "UpdateSchedule replaces "
                  "ActionAfterCompletion and State too (moto drops the one, empties the other), and re-anchors the "
                  "schedule when its timing changed", _update_keeps_all_of_the_request),
            Patch(scheduler.Schedule, "__init__", "ActionAfterCompletion is NONE when not given, as GetSchedule "
                  "says on AWS", _action_defaults),
            Patch(scheduler, "utcnow", "a StartDate more than 5 minutes in the past is refused against lab time",
                  lab_utcnow)]

"""RDS events as RDS records them: its categories and messages, and DescribeEvents' filters.

Messages are those of "Amazon RDS event categories and event messages" (DB instance events); moto keeps the
records, this module gives them AWS's wording and filters them by EventCategories and time as AWS does.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from labkit.localcloud.core.timestamps import lab_now

# RDS's event messages ("Amazon RDS event categories and event messages", DB instance events).
EVENTS = {
    "DB_INSTANCE_CREATE": (["creation"], "DB instance created."),
    "DB_INSTANCE_SHUTDOWN": (["availability"], "DB instance shutdown."),
    "DB_INSTANCE_RESTARTED": (["availability"], "DB instance restarted."),
    "DB_INSTANCE_RESTART_ERROR": (["availability"], "Error restarting mysql: {message}."),
    "DB_INSTANCE_RECOVERY_START": (["recovery"], "Recovery of the DB instance has started. Recovery time will vary "
                                                 "with the amount of data to be recovered."),
    "DB_INSTANCE_RECOVERY_FINISH": (["recovery"], "Recovery of the DB instance is complete."),
    "DB_INSTANCE_STOPPED": (["notification"], "DB instance stopped."),
    "DB_INSTANCE_STARTED": (["notification"], "DB instance started."),
    "DB_INSTANCE_RESET_MASTER_CREDENTIALS": (["configuration change"], "Reset master credentials."),
}


def add_event(db: Any, kind: str, **values: str) -> None:
    """Record an RDS event for ``db`` with RDS's category and message."""
    from moto.rds import models as rds_models  # moto is imported only after moto_patches.prepare_environment

    categories, message = EVENTS[kind]
    rds_models.Event.EVENT_MAP[kind] = {"Categories": categories, "Message": message.format(**values)}
    db.add_event(kind)


def _listed(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, dict):  # the query protocol's EventCategories.EventCategory.N
        value = list(value.values())
    if isinstance(value, str):
        return [value]
    flat: list[str] = []
    for item in value:
        flat.extend(_listed(item))
    return flat


def _time(value: Any) -> dt.datetime | None:
    """A request time as naive UTC, as moto stamps its events."""
    if not value:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def aws_event_map(original: dict[str, Any]) -> dict[str, Any]:
    """moto's event map with AWS's wording (full stops) and the events the local cloud records."""
    return {**original, **{kind: {"Categories": categories, "Message": message}
                           for kind, (categories, message) in EVENTS.items() if "{" not in message}}


def filtered_describe_events(original: Any) -> Any:
    """DescribeEvents as AWS filters it: EventCategories, StartTime/EndTime or Duration (default: the last 60 minutes
    of the lab clock)."""
    def wrapper(self: Any, source_identifier: str | None = None, source_type: str | None = None,
                **kwargs: Any) -> list[Any]:
        events = original(self, source_identifier, source_type)
        params = {key.lower().replace("_", ""): value for key, value in kwargs.items()}
        categories = _listed(params.get("eventcategories"))
        if categories:
            events = [e for e in events if set(e.event_categories) & set(categories)]
        end = _time(params.get("endtime")) or lab_now().replace(tzinfo=None)  # RDS stamps its events in lab time
        start = _time(params.get("starttime"))
        if start is None:
            start = end - dt.timedelta(minutes=int(params.get("duration") or 60))
        return sorted((e for e in events if start <= e.date <= end), key=lambda e: e.date)
    return wrapper

"""The local cloud's changes to moto's EventBridge (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

from labkit.localcloud.core.patches import Patch, hooked


def patches() -> list[Patch]:
    """The EventBridge patches."""
    from moto.events import models as events

    from labkit.localcloud.events.service import EventsService

    return [Patch(events.EventsBackend, "put_rule", "a scheduled rule is anchored on the lab clock when it is "
                  "put (AWS starts counting a rate from PutRule)", hooked(EventsService, "register"))]

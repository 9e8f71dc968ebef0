"""What EC2 takes time for, in realistic mode (:mod:`labkit.localcloud.core.timing`): a new interface endpoint
reads ``pending`` for ``endpoint_create`` seconds of lab time, carries nothing meanwhile (the network model routes
only through an ``available`` endpoint), then ``available``. Gateway endpoints are available at once, as on AWS.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from labkit.localcloud.core.patches import Patch, find
from labkit.localcloud.core.timing import TimingService


def _pending_first(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        timing = find(TimingService)
        if timing is None or not timing.delay("endpoint_create") or str(self.vpc_endpoint_type).lower() != "interface":
            return
        self.state = "pending"
        _available_later(timing, self, timing.now())
    return __init__


def _available_later(timing: TimingService, endpoint: Any, since: float) -> None:
    """``endpoint`` becomes ``available`` once ``endpoint_create`` has passed since ``since`` (lab time); the change
    is kept within half a second (it is made outside any request)."""
    def available() -> None:
        from labkit.localcloud.network.service import NetworkService

        if endpoint.state == "pending":
            endpoint.state = "available"
            timing.ctx.state.mark("ec2", endpoint.ec2_backend.region_name)
            network = find(NetworkService)
            if network is not None:
                network.changed()  # the VPC's calls go through it from the next connection on
    timing.later("endpoint_create", available, since=since, name=str(endpoint.id))


def resume_pending(backends: Any) -> int:
    """A restored lab (issue 23): each interface endpoint caught ``pending`` when the cloud stopped becomes
    ``available`` once ``endpoint_create`` has passed since it was made (lab time, which went on while the cloud
    was down: at once, usually), as it would have on AWS; without this it would stay pending, carrying nothing."""
    timing = find(TimingService)
    resumed = 0
    for _account, per_account in list(dict.items(backends)):
        for backend in list(dict.values(per_account)):
            for endpoint in list(backend.vpc_end_points.values()):
                if endpoint.state != "pending" or timing is None:
                    continue
                made = endpoint.creation_timestamp.replace(tzinfo=dt.timezone.utc).timestamp()
                if timing.now() >= made + timing.delay("endpoint_create"):
                    endpoint.state = "available"  # the network decides its paths once the API answers
                else:
                    _available_later(timing, endpoint, made)
                resumed += 1
    return resumed


def patches() -> list[Patch]:
    from moto.ec2.models import vpcs

    return [Patch(vpcs.VPCEndPoint, "__init__", "realistic mode: a new interface endpoint is pending, then available "
                  "(moto 5.2.5's is available at once)", _pending_first)]

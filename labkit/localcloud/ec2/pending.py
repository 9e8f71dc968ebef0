"""What EC2 takes time for, in realistic mode (:mod:`labkit.localcloud.core.timing`): a new interface endpoint
reads ``pending`` for ``endpoint_create`` seconds of lab time, carries nothing meanwhile (the network model routes
only through an ``available`` endpoint), then ``available``. Gateway endpoints are available at once, as on AWS.
"""
from __future__ import annotations

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
        endpoint = self

        def available() -> None:
            from labkit.localcloud.network.service import NetworkService

            if endpoint.state == "pending":
                endpoint.state = "available"
                network = find(NetworkService)
                if network is not None:
                    network.changed()  # the VPC's calls go through it from the next connection on
        timing.later("endpoint_create", available, name=str(self.id))
    return __init__


def patches() -> list[Patch]:
    from moto.ec2.models import vpcs

    return [Patch(vpcs.VPCEndPoint, "__init__", "realistic mode: a new interface endpoint is pending, then available "
                  "(moto 5.2.5's is available at once)", _pending_first)]

"""The embedded local cloud: moto's AWS APIs plus real processes where AWS runs something.

Only this package knows it is not AWS. Everything else reaches it through ``AWS_ENDPOINT_URL``.
"""
from __future__ import annotations

from labkit.localcloud.control import (
    CloudStatus,
    cloud_env,
    cloud_status,
    default_home,
    default_port,
    reset_cloud,
    start_cloud,
    stop_cloud,
)

__all__ = [
    "CloudStatus",
    "cloud_env",
    "cloud_status",
    "default_home",
    "default_port",
    "reset_cloud",
    "start_cloud",
    "stop_cloud",
]

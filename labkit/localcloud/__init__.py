"""The embedded local cloud: moto's AWS APIs plus real processes where AWS runs something.

Only this package knows it is not AWS. Everything else reaches it through ``AWS_ENDPOINT_URL``.

Where to look: :mod:`.control` starts, stops and asks the daemon from outside; :mod:`.server` is
the daemon; :mod:`.services` is the protocol every part of it implements (start, stop_all,
after_reset, summary, routes) and the hooks the network and IAM models use (a request hook before
moto for every AWS API call, a launch hook for the environment of every process the cloud starts);
:mod:`.moto_patches` is every change made to moto, checked against the pinned moto version (with
the services' patches in :mod:`.moto_patches_rds`, :mod:`.moto_patches_lambda` and :mod:`.moto_patches_ec2`,
and :mod:`.moto_ondemand`, which keeps moto's big catalogues out of an idle lab's memory);
:mod:`.rds`, :mod:`.lambda_service`, :mod:`.ec2` and :mod:`.scheduler` are the services.
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

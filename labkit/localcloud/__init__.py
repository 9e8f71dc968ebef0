"""The embedded local cloud: moto's AWS APIs plus real processes where AWS runs something.

Only this package knows it is not AWS. Everything else reaches it through ``AWS_ENDPOINT_URL``.

Where to look:

* the client side, imported by notebooks and the ``labkit`` command: :mod:`.control` starts, stops and asks the
  daemon from outside, :mod:`.credentials` reads the lab's admin keys, :mod:`.procs` finds the processes of a lab;
  none of them imports moto or the daemon;
* the daemon: :mod:`.server` composes it from :mod:`.core` (the daemon, the service protocol and registry,
  request classification, AWS errors, the moto patch registry, the lab clock) and one package per service, each
  holding its service, its moto patches and its errors: :mod:`.iam`, :mod:`.network`, :mod:`.ec2`, :mod:`.ssm`,
  :mod:`.awslambda`, :mod:`.rds`, :mod:`.events`, :mod:`.s3`, :mod:`.cloudtrail`, :mod:`.cloudwatch`;
  ``python -m labkit.localcloud.patches`` lists every change made to moto.
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

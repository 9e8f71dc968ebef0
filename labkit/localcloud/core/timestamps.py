"""Every timestamp the local cloud hands out follows the lab clock (:mod:`.clock`): one clock, as on AWS.

moto takes the time in three ways, each replaced here for the services a lab uses (found by reading moto 5.2.5's
models for ``utcnow``, ``datetime.now`` and ``time.time``):

* ``moto.core.utils.utcnow``, which ``unix_time``, ``unix_time_millis`` and the ``iso_8601_datetime_*`` helpers
  read when given no time (EventBridge's creation times and event times, Lambda's ``LastModified``, S3's event
  notifications), and the ``utcnow`` each model module imported by name (RDS, Secrets Manager, SSM, CloudWatch,
  Lambda, IAM, EC2's instances, endpoints, NAT gateways, key pairs, images, volumes, ...; moto's HTTP ``Date`` header,
  which the daemon's request handler writes in lab time too, :mod:`.http_keepalive`);
  S3's and CloudWatch Logs' are patched beside those services (:mod:`..s3.patches`, :mod:`..cloudwatch.patches`);
* ``time.time()`` in Secrets Manager (``CreatedDate``, ``LastChangedDate``, ``LastRotatedDate``, version dates);
* ``datetime.now()`` in S3's bucket ``CreationDate`` and CloudWatch's dashboard ``LastModified``.

The local cloud's own stamps already read the lab clock (CloudTrail, Lambda's logs and metrics, EventBridge, SSM
command output); RDS's DescribeEvents window ends at lab time (:mod:`..rds.events`).

Knowingly left on real time: STS's ``Expiration`` (your computer's SDK compares it with its own clock, which keeps
real time; an instance sees it on the lab clock through its metadata service, :mod:`..ec2.imds`), the expiry of a
presigned URL (S3 checks it against real time, :mod:`..iam.signing`) and the cloud's own waits and timeouts.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from labkit.localcloud.core.clock import ClockService, lab_utcnow
from labkit.localcloud.core.patches import Patch, find

UTC = dt.timezone.utc


def lab_now() -> dt.datetime:
    """Lab time, timezone-aware (real time when no clock service runs: moto in a test of its own)."""
    service = find(ClockService)
    return service.clock.now() if service is not None else dt.datetime.now(UTC)


class LabTimeModule:
    """The ``time`` module as one moto module sees it: ``time()`` reads the lab clock, the rest is the real one."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def time(self) -> float:
        service = find(ClockService)
        return service.clock.timestamp() if service is not None else self._real.time()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _stamped_after(attribute: str, naive: bool) -> Callable[[Any], Any]:
    """An ``__init__`` that stamps ``attribute`` with lab time once moto's has run (moto took ``datetime.now()``)."""
    def replace(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            now = lab_now()
            setattr(self, attribute, now.replace(tzinfo=None) if naive else now)
        return __init__
    return replace


def patches() -> list[Patch]:
    """The lab clock in every moto module the lab's services take the time in."""
    from moto.awslambda import models as lambda_models
    from moto.cloudwatch import models as cloudwatch_models
    from moto.core import responses as core_responses
    from moto.core import utils as core_utils
    from moto.ec2.models import (
        amis,
        elastic_block_store,
        fleets,
        flow_logs,
        instances,
        key_pairs,
        launch_templates,
        nat_gateways,
        transit_gateway,
        transit_gateway_attachments,
        transit_gateway_route_tables,
        vpcs,
    )
    from moto.ec2.responses import general as ec2_general
    from moto.ec2.responses import windows as ec2_windows
    from moto.iam import models as iam_models
    from moto.rds import models as rds_models
    from moto.s3 import models as s3_models
    from moto.secretsmanager import models as secrets_models
    from moto.ssm import models as ssm_models

    by_name = [
        (core_utils, "the default time of unix_time, unix_time_millis and the iso_8601 helpers (EventBridge's "
                     "creation and event times, Lambda's LastModified, S3's event notifications)"),
        (core_responses, "the HTTP Date header of every answer"),
        (rds_models, "RDS's InstanceCreateTime, event Dates, snapshot times"),
        (secrets_models, "Secrets Manager's DeletionDate"),
        (ssm_models, "SSM's RequestedDateTime of a command, parameters' LastModifiedDate"),
        (cloudwatch_models, "CloudWatch's metric data without a Timestamp, alarms' state and configuration times"),
        (lambda_models, "Lambda's layer versions' CreatedDate and its other dates"),
        (iam_models, "IAM's CreateDate of roles, users, policies and keys, a role's RoleLastUsed"),
        (instances, "EC2's LaunchTime, attach times and the reason of a stopped instance"),
        (vpcs, "a VPC endpoint's CreationTimestamp"),
        (nat_gateways, "a NAT gateway's CreateTime"),
        (key_pairs, "a key pair's CreateTime"),
        (amis, "an image's CreationDate"),
        (elastic_block_store, "volumes' CreateTime and AttachTime, snapshots' StartTime"),
        (flow_logs, "a flow log's CreationTime"),
        (launch_templates, "a launch template's CreateTime"),
        (fleets, "a fleet's ValidFrom"),
        (transit_gateway, "a transit gateway's CreationTime"),
        (transit_gateway_attachments, "a transit gateway attachment's CreationTime"),
        (transit_gateway_route_tables, "a transit gateway route table's CreationTime"),
        (ec2_general, "GetConsoleOutput's Timestamp"),
        (ec2_windows, "GetPasswordData's Timestamp"),
    ]
    return [
        *(Patch(module, "utcnow", f"{why} in lab time", lab_utcnow) for module, why in by_name),
        Patch(secrets_models, "time", "Secrets Manager's CreatedDate, LastChangedDate, LastRotatedDate, "
              "NextRotationDate and version dates in lab time (moto reads time.time())",
              lambda real: LabTimeModule(real if isinstance(real, ModuleType) else time)),
        Patch(s3_models.FakeBucket, "__init__", "a bucket's CreationDate in lab time (moto reads datetime.now())",
              _stamped_after("creation_date", naive=False)),
        Patch(cloudwatch_models.Dashboard, "__init__", "a dashboard's LastModified in lab time (moto reads "
              "datetime.now(), local time)", _stamped_after("last_modified", naive=True)),
    ]

"""The local cloud's daemon as it runs for a lab: which services and moto patches it has, and its entry point.

Run as ``python -m labkit.localcloud.server --port N --home DIR --cloud-id ID`` (``labkit cloud start`` does this).
The daemon itself (:mod:`labkit.localcloud.core.daemon`) knows no service: this module composes it from the
service packages, each of which holds its service, its moto patches and its errors.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from labkit.localcloud.control import HOST, STATE_ERROR
from labkit.localcloud.core.daemon import LocalCloud, ServiceFactory
from labkit.localcloud.core.patches import PatchList, check_version
from labkit.localcloud.core.pickling import RuleList, Rules
from labkit.localcloud.core.statefiles import HOW_TO_GO_ON, StateError, write_atomic
from labkit.localcloud.core.validation import Adjust, Rule, ValidationService


def default_services() -> tuple[ServiceFactory, ...]:
    """The services of every daemon, in registration order after the lab clock (request and launch hooks run in
    this order, ``stop_all`` in the reverse one). A new model of the cloud adds its factory here. Parameters are
    validated once IAM has authenticated and authorized the caller, before any other hook or moto sees them."""
    from labkit.localcloud.awslambda.service import LambdaService
    from labkit.localcloud.cloudtrail.service import CloudTrailService
    from labkit.localcloud.cloudwatch.telemetry import Telemetry
    from labkit.localcloud.core.timing import TimingService
    from labkit.localcloud.ec2.imds import ImdsService
    from labkit.localcloud.ec2.service import Ec2Service
    from labkit.localcloud.events.scheduler import SchedulerService
    from labkit.localcloud.events.service import EventsService
    from labkit.localcloud.iam.service import IamService
    from labkit.localcloud.network.service import NetworkService
    from labkit.localcloud.rds.service import RdsService

    validation = functools.partial(ValidationService, checks=validation_rules())
    return (TimingService, IamService, validation, CloudTrailService, ImdsService, NetworkService, Telemetry, RdsService,
            LambdaService, Ec2Service, EventsService, SchedulerService)


def validation_rules() -> list[Rule | Adjust]:
    """Each service package's rules for what AWS refuses that the models do not say (:mod:`.core.validation`)."""
    from labkit.localcloud.awslambda import validation as lambda_validation
    from labkit.localcloud.cloudtrail import validation as cloudtrail_validation
    from labkit.localcloud.ec2 import validation as ec2_validation
    from labkit.localcloud.events import validation as events_validation
    from labkit.localcloud.rds import validation as rds_validation
    from labkit.localcloud.s3 import validation as s3_validation

    return [*lambda_validation.rules(), *cloudtrail_validation.rules(), *rds_validation.rules(),
            *s3_validation.rules(), *ec2_validation.rules(), *events_validation.rules()]


def patch_lists() -> tuple[PatchList, ...]:
    """Each service package's moto patches (the core's own are added by the daemon)."""
    from labkit.localcloud.awslambda import layers as lambda_layers
    from labkit.localcloud.awslambda import patches as lambda_patches
    from labkit.localcloud.cloudwatch import patches as cloudwatch_patches
    from labkit.localcloud.core import timestamps
    from labkit.localcloud.ec2 import dependencies as ec2_dependencies
    from labkit.localcloud.ec2 import endpoints as ec2_endpoints
    from labkit.localcloud.ec2 import network_acls as ec2_network_acls
    from labkit.localcloud.ec2 import patches as ec2_patches
    from labkit.localcloud.ec2 import pending as ec2_pending
    from labkit.localcloud.events import patches as events_patches
    from labkit.localcloud.iam import dependencies as iam_dependencies
    from labkit.localcloud.iam import patches as iam_patches
    from labkit.localcloud.network import patches as network_patches
    from labkit.localcloud.rds import dependencies as rds_dependencies
    from labkit.localcloud.rds import patches as rds_patches
    from labkit.localcloud.s3 import patches as s3_patches
    from labkit.localcloud.secretsmanager import patches as secretsmanager_patches
    from labkit.localcloud.ssm import patches as ssm_patches

    return (iam_patches.patches, iam_dependencies.patches, rds_patches.patches, rds_dependencies.patches,
            lambda_patches.patches, lambda_layers.patches, ec2_patches.patches, ec2_dependencies.patches,
            ec2_endpoints.patches, ec2_network_acls.patches, ec2_pending.patches,
            network_patches.patches, ssm_patches.patches, events_patches.patches, s3_patches.patches,
            cloudwatch_patches.patches, secretsmanager_patches.patches, timestamps.patches)


def state_lists() -> tuple[RuleList, ...]:
    """Each service package's rules for saving what moto (and its patches) put in the records (issue 23)."""
    from labkit.localcloud.awslambda import state as lambda_state
    from labkit.localcloud.cloudwatch import state as cloudwatch_state
    from labkit.localcloud.ec2 import state as ec2_state
    from labkit.localcloud.iam import state as iam_state
    from labkit.localcloud.s3 import state as s3_state
    from labkit.localcloud.ssm import state as ssm_state

    return (iam_state.rules, ec2_state.rules, ssm_state.rules, lambda_state.rules, s3_state.rules,
            cloudwatch_state.rules)


def lab_state(home: Path) -> Any:
    """The lab's saved state (None with ``LABKIT_STATE=off``: the lab then lives in memory only)."""
    if os.environ.get("LABKIT_STATE", "on").lower() in ("off", "0", "false", "no"):
        return None
    from labkit.localcloud.core.state import Persistence

    return Persistence(home, Rules(state_lists()))


def refuse_state(home: Path, error: StateError) -> int:
    """Say why the saved state cannot be read and what to do, where ``labkit cloud start`` shows it."""
    message = f"{error}.\n{HOW_TO_GO_ON}"
    print(f"local cloud: {message}", file=sys.stderr)
    try:
        write_atomic(home / "state" / "ERROR", message.encode(), sync=False)
    except OSError:
        pass
    return STATE_ERROR


def prepare_environment(home: Path) -> None:
    """moto's documented ways in that must be set before moto's models are imported (the EC2 image and
    instance type catalogues), and where published layers' zips are kept."""
    check_version()
    from labkit.localcloud.awslambda.layers import keep_layers_in
    from labkit.localcloud.ec2 import catalogue

    catalogue.prepare(home)
    keep_layers_in(home / "moto" / "layers")


def load_factory(spec: str) -> ServiceFactory:
    """``module:attribute`` -> the service factory it names (``--service``, for tests and experiments)."""
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"a service is given as module:factory, not {spec!r}")
    factory: ServiceFactory = getattr(importlib.import_module(module), attribute)
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--cloud-id", required=True)
    parser.add_argument("--service", action="append", default=[], metavar="MODULE:FACTORY",
                        help="register one more service after the default ones (tests, experiments)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.umask(0o077)  # the lab's state (databases, secrets in records, logs) is its owner's only
    args.home.mkdir(parents=True, exist_ok=True)
    home = args.home.resolve()
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AWS managed policies exist, as on AWS
    prepare_environment(home)
    (home / "state" / "ERROR").unlink(missing_ok=True)
    try:
        factories = [*default_services(), *(load_factory(spec) for spec in args.service)]
        cloud = LocalCloud(home, args.port, args.cloud_id, factories, patch_lists(), lab_state(home))
        cloud.serve_forever()
    except StateError as exc:
        return refuse_state(home, exc)
    except OSError as exc:
        print(f"local cloud: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

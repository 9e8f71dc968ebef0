"""botocore's service models, read once per daemon.

moto, the request classifier (:mod:`labkit.localcloud.core.requests`) and the daemon's own clients (the network
model's, the telemetry's) each read the models through a loader of their own: the EC2 model alone is 14 MiB a
copy. :func:`model_loader` is the daemon's one loader (moto's, which adds moto's extras to the models),
:func:`botocore_session` a session that reads through it; :func:`labkit.localcloud.core.patches.core_patches`
makes moto read through it too.

The other big catalogues moto holds are read on demand by the services that own them: AWS managed policies
(:mod:`labkit.localcloud.iam.managed_policies`), EC2's instance types and offerings
(:mod:`labkit.localcloud.ec2.catalogue`), published layers' zips (:mod:`labkit.localcloud.awslambda.layers`).
"""
from __future__ import annotations

import functools
from typing import Any


@functools.cache
def model_loader() -> Any:
    """The daemon's one loader of service models (moto's): each model is read once, whoever asks."""
    from moto.core.loaders import create_loader

    return create_loader()


def botocore_session() -> Any:
    """A new botocore session that reads its models through :func:`model_loader`."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", model_loader())
    return session


@functools.cache
def service_model(service: str) -> Any:
    """botocore's model of ``service`` (its botocore name), read once."""
    return botocore_session().get_service_model(service)


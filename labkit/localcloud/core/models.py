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
import os
from typing import Any


@functools.cache
def model_loader() -> Any:
    """The daemon's one loader of service models (moto's): each model is read once, whoever asks, as plain dicts
    and without the documentation of its shapes and operations (:func:`_lean_loader`)."""
    return _lean_loader()


def _lean_loader() -> Any:
    """moto's loader, reading botocore's JSON files into plain dicts (ordered, as every dict is) where botocore makes
    OrderedDicts, and dropping the documentation text of a service model's shapes, members and operations, which
    only botocore's docstrings read: the EC2 model held 13.8 MiB, 6.5 this way (the daemon reads a dozen models)."""
    import json

    from botocore.loaders import JSONFileLoader
    from moto.core.loaders import Loader, moto_root

    class PlainJSONFileLoader(JSONFileLoader):  # type: ignore[misc]  # botocore ships no type hints
        def _load_file(self, full_path: str, open_method: Any) -> Any:
            if not os.path.isfile(full_path):
                return None
            with open_method(full_path, "rb") as fp:
                return json.loads(fp.read().decode("utf-8"))

    class LeanLoader(Loader):
        def __init__(self) -> None:
            super().__init__(extra_search_paths=[moto_root], file_loader=PlainJSONFileLoader())
            self._lean: set[int] = set()

        def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
            model = super().load_service_model(service_name, type_name, api_version)  # (cached by botocore)
            if type_name == "service-2" and id(model) not in self._lean:
                _drop_documentation(model)
                self._lean.add(id(model))
            return model

    return LeanLoader()


def _drop_documentation(model: dict[str, Any]) -> None:
    """Remove the documentation of the operations, the shapes and their members (the rest is kept as it is: a
    client context parameter's documentation is read by botocore)."""
    model.pop("documentation", None)
    for entry in [*model.get("operations", {}).values(), *model.get("shapes", {}).values()]:
        entry.pop("documentation", None)
        entry.pop("documentationUrl", None)
        for member in (entry.get("members") or {}).values():
            member.pop("documentation", None)


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


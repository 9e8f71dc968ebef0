"""Every change the local cloud makes to moto, in one place, for one pinned moto version.

moto keeps the records; the local cloud's services (:mod:`labkit.localcloud.services`) run what AWS
runs. Where moto has an official way in -- ``MOTO_AMIS_PATH`` for the image catalogue,
``/moto-api/reset`` for a reset -- the cloud uses it. Everything else is a patch listed in
:func:`patches`, each with the reason it exists: the core, events, S3 and clock patches here, the
services' in :mod:`.moto_patches_rds`, :mod:`.moto_patches_lambda`, :mod:`.moto_patches_ec2` (EC2/VPC and SSM)
and :mod:`.moto_ondemand`. :func:`apply` refuses any moto but
:data:`MOTO_VERSION` and any patch whose target has gone, so an upgrade breaks loudly here, once,
instead of quietly in the services: re-read each patch against the new moto, then move the pin
(here and in pyproject.toml) together.

The wrappers find the service they call through the registry given to :func:`apply` (``iam``,
``rds``, ``lambda``, ``ec2``, ``scheduler``); a service that is not registered leaves moto's own
behaviour.
"""
from __future__ import annotations

import importlib.metadata
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from labkit.localcloud.services import Registry

MOTO_VERSION = "5.2.5"
# The local "Ubuntu 22.04" image, registered in every region as Canonical publishes it.
JAMMY = {"ami_id": "ami-0a1b2c3d4e5f60722", "state": "available", "public": True, "owner_id": "099720109477",
         "image_location": "099720109477/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101",
         "sriov": "simple", "root_device_type": "ebs", "root_device_name": "/dev/sda1",
         "description": "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image (local cloud sandbox)",
         "image_type": "machine", "platform": None, "architecture": "x86_64",
         "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101", "virtualization_type": "hvm",
         "hypervisor": "xen"}


@dataclass(frozen=True)
class Patch:
    """``owner.attribute = replace(original)``, and why; ``adds`` for an attribute moto lacks (``replace``
    then gets None, and moto growing the attribute is an error: check whether the patch is still needed)."""

    owner: Any
    attribute: str
    why: str
    replace: Callable[[Any], Any]
    adds: bool = False

    @property
    def label(self) -> str:
        return f"{getattr(self.owner, '__module__', '')}.{getattr(self.owner, '__qualname__', self.owner.__name__)}" \
               f".{self.attribute}".lstrip(".")


_services = Registry()
_originals: dict[tuple[int, str], Any] = {}


def _service(name: str) -> Any:
    """The registered service ``name``, or None (then the wrapper keeps moto's own behaviour)."""
    return _services.get(name)


def check_version() -> None:
    """Refuse any moto but the one these patches were written against."""
    installed = importlib.metadata.version("moto")
    if installed != MOTO_VERSION:
        raise RuntimeError(
            f"the local cloud's moto patches are written for moto {MOTO_VERSION}, but moto {installed} is installed: "
            "run `make setup` to install the pinned version, or re-check every patch in "
            "labkit/localcloud/moto_patches*.py against the new moto and move the pin here and in pyproject.toml")


def prepare_environment(home: Path) -> None:
    """moto's documented ways in that must be set before moto's models are imported.

    ``MOTO_AMIS_PATH``: the image catalogue is moto's default list plus the local Ubuntu 22.04 image
    (the lab launches Canonical's Ubuntu; moto ships no Canonical image). moto's EC2 catalogues are read when
    first asked for and published layers' zips kept under ``home/moto/layers`` (:mod:`.moto_ondemand`).
    """
    check_version()
    if "moto.ec2.models.amis" in sys.modules:
        raise RuntimeError("prepare_environment() must run before moto's EC2 models are imported")
    from moto.utilities.utils import load_resource

    images = [image for image in load_resource("ec2/resources/amis.json") if image["ami_id"] != JAMMY["ami_id"]]
    path = home / "moto" / "amis.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*images, JAMMY]))
    os.environ["MOTO_AMIS_PATH"] = str(path)
    from labkit.localcloud import moto_ondemand

    moto_ondemand.ec2_catalogues_on_demand()
    moto_ondemand.keep_layers_in(home / "moto" / "layers")


def _hooked(service: str, hook: str) -> Callable[[Any], Any]:
    """A backend method wrapper that passes moto's result to ``<service>.<hook>(result)``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            target = _service(service)
            if target is not None:
                getattr(target, hook)(result)
            return result
        return wrapper
    return replace


def _each_changed(service: str, hook: str) -> Callable[[Any], Any]:
    """For moto's ``*_instances`` that return ``[(instance, previous_state), ...]``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, instance_ids: list[str]) -> Any:
            changed = original(self, instance_ids)
            target = _service(service)
            for instance, _previous in changed if target is not None else ():
                getattr(target, hook)(instance)
            return changed
        return wrapper
    return replace


def _events_patches() -> list[Patch]:
    from moto.events import models as events

    return [Patch(events.EventsBackend, "put_rule", "a scheduled rule is anchored on the lab clock when it is "
                  "put (AWS starts counting a rate from PutRule)", _hooked("scheduler", "register"))]


def _clock_patches() -> list[Patch]:
    from moto.logs import models as logs_models
    from moto.s3 import models as s3_models

    def lab_utcnow(original: Any) -> Any:
        def wrapper() -> Any:
            scheduler = _service("scheduler")
            return scheduler.clock.now().replace(tzinfo=None) if scheduler is not None else original()
        return wrapper  # moto's utcnow() is naive UTC

    return [Patch(s3_models, "utcnow", "S3's LastModified is lab time (labkit.localcloud.clock)", lab_utcnow),
            Patch(logs_models, "utcnow", "Logs accepts events in a window around lab time, not real time",
                  lab_utcnow)]


def _s3_patches() -> list[Patch]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.s3.responses import S3Response
    from werkzeug.datastructures import ImmutableMultiDict

    def body_kept(_original: Callable[..., str | None]) -> Callable[..., str | None]:
        def _get_body(_self: Any, environ: dict[str, Any]) -> str | None:
            if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                return None
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return None
            if not size:
                return None
            data = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(data)  # always put back, whatever the bytes
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return None  # not a query API call: leave the service to the path and headers
        return _get_body

    def bytes_as_sent(original: Callable[..., None]) -> Callable[..., None]:
        def setup_class(self: Any, request: Any, *args: Any, **kwargs: Any) -> None:
            if not (request.method == "POST" and request.mimetype == "multipart/form-data"):
                request.get_data(cache=True)  # the bytes as sent; request.data now returns them
                vars(request).update(form=ImmutableMultiDict(), files=ImmutableMultiDict())  # and no form
            original(self, request, *args, **kwargs)
        return setup_class

    return [Patch(DomainDispatcherApplication, "_get_body", "to route an unsigned request (a presigned URL) moto "
                  "reads a form-encoded body as UTF-8 and puts it back only when that works: a presigned PUT of "
                  "bytes that are not UTF-8 lost its body and hung reading the socket again", body_kept),
            Patch(S3Response, "setup_class", "S3 reads a form only in a browser upload (POST Object, "
                  "multipart/form-data); werkzeug parses any application/x-www-form-urlencoded body as a form, so "
                  "moto stored such a PutObject/UploadPart body as empty (or took its fields as parameters): every "
                  "other request's body is kept as the bytes sent", bytes_as_sent)]


def _core_patches() -> list[Patch]:
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())

    def once_per_class(original: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
        names: dict[Any, list[str]] = {}
        return lambda clazz: names[clazz] if clazz in names else names.setdefault(clazz, original(clazz))

    return [Patch(backends, "list_of_moto_modules", "moto lists its own package folders from disk to route every "
                  "request (175 stat calls); the list is fixed for the pinned version, so read it once",
                  lambda _original: lambda: modules),
            Patch(responses, "method_names_from_class", "moto runs inspect.getmembers over the response class on "
                  "every request (0.6 ms of CPU per API call); a class's methods are fixed once the patches are "
                  "applied, so list them once per class", once_per_class)]


def patches() -> list[Patch]:
    """Every patch, grouped by the service it serves."""
    from labkit.localcloud import moto_ondemand, moto_patches_ec2, moto_patches_lambda, moto_patches_rds

    return [*_core_patches(), *moto_patches_rds.patches(), *moto_patches_lambda.patches(),
            *moto_patches_ec2.patches(), *_events_patches(), *_s3_patches(), *_clock_patches(),
            *moto_ondemand.patches()]


def apply(services: Registry) -> list[Patch]:
    """Check the moto version, patch moto (once per process) and route the wrappers to ``services``."""
    global _services
    check_version()
    _services = services
    applied = patches()
    for patch in applied:
        key = (id(patch.owner), patch.attribute)
        if key in _originals:
            continue  # already patched in this process; the wrappers now see the new registry
        present = patch.attribute in vars(patch.owner)
        if present == patch.adds:
            state = "already has" if patch.adds else "has no"
            raise RuntimeError(f"moto {MOTO_VERSION} {state} {patch.label} ({patch.why}); "
                               "re-check labkit/localcloud/moto_patches*.py")
        _originals[key] = vars(patch.owner).get(patch.attribute)
        setattr(patch.owner, patch.attribute, patch.replace(getattr(patch.owner, patch.attribute, None)))
    return applied


def describe() -> list[dict[str, str]]:
    """The patches as rows (``python -m labkit.localcloud.moto_patches`` prints them)."""
    return [{"patch": patch.label, "why": patch.why} for patch in patches()]


if __name__ == "__main__":
    for row in describe():
        print(f"{row['patch']}\n    {row['why']}")

"""The registry of the local cloud's changes to moto, for one pinned moto version.

moto keeps the records; the local cloud's services (:mod:`labkit.localcloud.core.services`) run what AWS runs.
Where moto has an official way in -- ``MOTO_AMIS_PATH`` for the image catalogue, ``/moto-api/reset`` for a
reset -- the cloud uses it. Everything else is a :class:`Patch`, each with the reason it exists, kept beside the
service it serves (``<service>/patches.py``: each package's ``patches()`` returns its list);
``python -m labkit.localcloud.patches`` prints them all. :func:`apply` refuses any moto but
:data:`MOTO_VERSION` and any patch whose target has gone, so an upgrade breaks loudly here, once, instead of
quietly in the services: re-read each patch against the new moto, then move the pin (here and in
pyproject.toml) together.

A wrapper finds the service it calls with :func:`find` (by the service's class, typed), among the services
given to :func:`apply`; a service that is not registered leaves moto's own behaviour.
"""
from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from labkit.localcloud.core.models import botocore_session, model_loader
from labkit.localcloud.core.services import Registry, Service

MOTO_VERSION = "5.2.5"
S = TypeVar("S", bound=Service)
PatchList = Callable[[], list["Patch"]]


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
_patched: set[tuple[int, str]] = set()  # (owner, attribute) patched in this process (moto's original not kept)


def find(kind: type[S]) -> S | None:
    """The registered service of class ``kind``, or None (then the wrapper keeps moto's own behaviour)."""
    return _services.find(kind)


def hooked(kind: type[Service], hook: str) -> Callable[[Any], Any]:
    """A backend method wrapper that passes moto's result to ``<service>.<hook>(result)``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            target = find(kind)
            if target is not None:
                getattr(target, hook)(result)
            return result
        return wrapper
    return replace


def each_changed(kind: type[Service], hook: str) -> Callable[[Any], Any]:
    """For moto's ``*_instances`` that return ``[(instance, previous_state), ...]``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, instance_ids: list[str]) -> Any:
            changed = original(self, instance_ids)
            target = find(kind)
            for instance, _previous in changed if target is not None else ():
                getattr(target, hook)(instance)
            return changed
        return wrapper
    return replace


def check_version() -> None:
    """Refuse any moto but the one these patches were written against."""
    installed = importlib.metadata.version("moto")
    if installed != MOTO_VERSION:
        raise RuntimeError(
            f"the local cloud's moto patches are written for moto {MOTO_VERSION}, but moto {installed} is installed: "
            "run `make setup` to install the pinned version, or re-check every patch in "
            "labkit/localcloud/*/patches.py against the new moto and move the pin here and in pyproject.toml")


def _undocumented_api_method(_original: Any) -> Any:
    """botocore's ``ClientCreator._create_api_method`` without the docstring: the method a client class gets for
    one operation, as botocore 1.44.8 makes it."""
    def create_api_method(_creator: Any, py_operation_name: str, operation_name: str, _service_model: Any) -> Any:
        def _api_call(client: Any, *args: Any, **kwargs: Any) -> Any:
            if args:
                raise TypeError(f"{py_operation_name}() only accepts keyword arguments.")
            return client._make_api_call(operation_name, kwargs)

        _api_call.__name__ = str(py_operation_name)
        return _api_call
    return create_api_method


def _untracked_new(_original: Any) -> Any:
    from moto.core.common_models import BaseModel

    def __new__(cls: type, *_args: Any, **_kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]
    return staticmethod(__new__)


def core_patches() -> list[Patch]:
    """What every request pays in moto's routing, the one reading of botocore's models, the daemon's own
    botocore clients without documentation, and moto's models not kept after their records are gone."""
    import botocore.client
    from moto import backends
    from moto.core import base_backend, common_models, responses
    from moto.core import utils as core_utils

    modules = tuple(backends.list_of_moto_modules())

    def once_per_class(original: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
        names: dict[Any, list[str]] = {}
        return lambda clazz: names[clazz] if clazz in names else names.setdefault(clazz, original(clazz))

    @functools.cache
    def session_of(_cls: type) -> Any:  # one session per backend class
        return botocore_session()

    def get_session(cls: type) -> Any:
        return session_of(cls)

    return [Patch(backends, "list_of_moto_modules", "moto lists its own package folders from disk to route every "
                  "request (175 stat calls); the list is fixed for the pinned version, so read it once",
                  lambda _original: lambda: modules),
            Patch(responses, "method_names_from_class", "moto runs inspect.getmembers over the response class on "
                  "every request (0.6 ms of CPU per API call); a class's methods are fixed once the patches are "
                  "applied, so list them once per class", once_per_class),
            Patch(core_utils, "_load_service_model", "moto reads each service model through a new loader; the daemon "
                  "reads them once, through the one loader its own clients and classifier share",
                  lambda _original: lambda service, model: model_loader().load_service_model(service, model)),
            Patch(base_backend.AccountSpecificBackend, "get_session", "moto's botocore session (for the regions of "
                  "a service) reads the endpoints through that loader too",
                  lambda _original: classmethod(get_session)),
            Patch(botocore.client.ClientCreator, "_create_api_method", "botocore gives each method of a client class "
                  "a docstring holding the operation's model, made for every operation when the class is made; "
                  "nobody reads the daemon's clients' help (the EC2 client alone has 830 methods; 0.4-1.5 MiB of "
                  "an idle lab's daemon)",
                  _undocumented_api_method),
            Patch(common_models.BaseModel, "__new__", "moto appends every model it makes (each log event, metric "
                  "datum, S3 key) to a class-wide list for its dashboard, which the cloud closes (it would bypass "
                  "IAM): the daemon kept every record ever made, deleted ones too, so its memory grew with every "
                  "order and never came back after a teardown; models are made untracked (S3's reset disposes the "
                  "keys still in its buckets, and a key no record holds is closed when it is freed)",
                  _untracked_new)]


def apply(services: Registry, lists: Iterable[PatchList]) -> list[Patch]:
    """Check the moto version, patch moto (once per process) with every patch ``lists`` give, and route the
    wrappers to ``services``."""
    global _services
    check_version()
    _services = services
    applied = [patch for patch_list in lists for patch in patch_list()]
    for patch in applied:
        key = (id(patch.owner), patch.attribute)
        if key in _patched:
            continue  # already patched in this process; the wrappers now see the new registry
        present = patch.attribute in vars(patch.owner)
        if present == patch.adds:
            state = "already has" if patch.adds else "has no"
            raise RuntimeError(f"moto {MOTO_VERSION} {state} {patch.label} ({patch.why}); "
                               "re-check labkit/localcloud/*/patches.py")
        _patched.add(key)
        setattr(patch.owner, patch.attribute, patch.replace(getattr(patch.owner, patch.attribute, None)))
    return applied


def describe(lists: Iterable[PatchList]) -> list[dict[str, str]]:
    """The patches as rows (``python -m labkit.localcloud.patches`` prints them)."""
    return [{"patch": patch.label, "why": patch.why} for patch_list in lists for patch in patch_list()]

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
import json
import os
import threading
from array import array
from collections.abc import Iterator, Mapping
from typing import Any


@functools.cache
def model_loader() -> Any:
    """The daemon's one loader of service models (moto's): each model is read once, whoever asks, as plain dicts
    without the documentation of its shapes and operations, each shape and operation read from its JSON text when
    first asked for (:func:`_lean_loader`)."""
    return _lean_loader()


def _lean_loader() -> Any:
    """moto's loader, reading botocore's JSON files into plain dicts (ordered, as every dict is) where botocore makes
    OrderedDicts, and dropping the documentation text of a service model's shapes, members and operations, which
    only botocore's docstrings read: the EC2 model held 13.8 MiB, 6.5 this way (the daemon reads a dozen models).
    A service model's shapes and operations are then kept as JSON text (:class:`OnDemand`): a lab uses a few dozen
    of EC2's 4,400 shapes, and the daemon held 13 MiB of models read during the series."""
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
            self._lock = threading.Lock()  # one thread makes a model lean while the others wait for it

        def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
            with self._lock:
                model = super().load_service_model(service_name, type_name, api_version)  # (cached by botocore)
                if type_name == "service-2" and id(model) not in self._lean:
                    _drop_documentation(model)
                    _on_demand(model)
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


def _on_demand(model: dict[str, Any]) -> None:
    """Replace the model's shapes and operations by :class:`OnDemand` mappings of the same entries. The text is
    made, and the dicts freed, before the mappings' own objects are made: those would otherwise sit among the
    freed dicts and keep their memory from being given back."""
    texts = {key: OnDemand.text_of(model[key]) for key in ("shapes", "operations") if isinstance(model.get(key), dict)}
    for key in texts:
        del model[key]
    for key, (names, text, ends) in texts.items():
        model[key] = OnDemand(names, text, ends)


class OnDemand(Mapping[str, Any]):
    """A service model's shapes (or operations): name -> dict, as botocore's JSON has them, each kept as compact
    JSON text in one block and read into its dict when asked for. botocore and moto only look entries up by name
    and list the names. The last :attr:`KEEP` entries read are kept: the ones in use are held by botocore's shapes
    and operation models anyway, and a walk through every shape (moto's table of a service's errors, made on the
    first error it answers) keeps only what it found."""

    KEEP = 512

    def __init__(self, names: bytes, text: bytes, ends: array[int]) -> None:
        self._text, self._ends = text, ends
        self._index = {name: i for i, name in enumerate(names.decode().split("\0"))} if names else {}
        self._read: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def text_of(entries: dict[str, Any]) -> tuple[bytes, bytes, array[int]]:
        """The names (NUL-separated), the entries' JSON text end to end, and where each entry's text ends."""
        pieces, ends, end = [], array("L"), 0
        for entry in entries.values():
            piece = json.dumps(entry, separators=(",", ":")).encode()
            pieces.append(piece)
            end += len(piece)
            ends.append(end)
        return "\0".join(entries).encode(), b"".join(pieces), ends

    def __getitem__(self, name: str) -> Any:
        entry = self._read.get(name)
        if entry is None:
            i = self._index[name]  # KeyError for a name the model lacks, as a dict's
            entry = json.loads(self._text[self._ends[i - 1] if i else 0:self._ends[i]])
            with self._lock:
                while len(self._read) >= self.KEEP:  # the oldest read first
                    del self._read[next(iter(self._read))]
                entry = self._read.setdefault(name, entry)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def kept(self) -> int:
        """How many entries read are kept."""
        return len(self._read)


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


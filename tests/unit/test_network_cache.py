"""The network model keeps answers per VPC generation; an answer worked out from a description read before a
change must not be kept for the generation after it (it would open or drop paths by the old rules)."""
from __future__ import annotations

import threading

from labkit.localcloud.network.service import NetworkService


def _model() -> NetworkService:
    model = object.__new__(NetworkService)  # the cache alone: no listeners, no decision socket
    model.lock, model.generation, model._cache, model._cache_generation = threading.RLock(), 0, {}, -1
    return model


def test_an_answer_read_before_a_change_is_not_kept_after_it():
    model = _model()
    _, read_at = model._cached("network")
    model.generation += 1  # a rule is authorized while the description is being read
    assert model._cached("other") == (None, 1)  # another thread starts the new generation's cache
    model._store("network", "described before the change", read_at)
    assert model._cached("network") == (None, 1)


def test_an_answer_of_the_current_generation_is_kept_until_the_next_change():
    model = _model()
    _, read_at = model._cached("network")
    model._store("network", "current", read_at)
    assert model._cached("network") == ("current", 0)
    model.generation += 1
    assert model._cached("network") == (None, 1)

"""What the lab's state needs to know of moto's Lambda (issue 23; composed by :mod:`labkit.localcloud.server`).

A function keeps its records (configuration, code, versions, aliases, policy); what runs it does not survive a
restart: the next invoke is a cold start, as on AWS after any update. A published layer's zip is a file of the
lab's layers folder named by its digest (:mod:`.layers`), not a part of the record.
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule

REVISION = "_labkit_revision"  # which warm pool serves the function (labkit.localcloud.awslambda.service)


def _function(kind: Any, state: dict[str, Any]) -> Any:
    function = kind.__new__(kind)
    vars(function).update(state)
    function._DockerModel__docker_client = None  # moto's __getstate__ drops it and has no __setstate__
    return function


def _reduce_function(function: Any, _pickler: StatePickler) -> Any:
    state = {k: v for k, v in function.__getstate__().items() if k != REVISION}  # new workers after a restart
    return _function, (type(function), state)


def rules() -> list[StateRule]:
    from moto.awslambda.models import LambdaFunction

    return [
        StateRule(LambdaFunction, "moto's __getstate__ drops the Docker client and has no __setstate__ (an unpickled "
                  "function would lack the attribute); its warm pool is not kept", reduce=_reduce_function),
        StateRule("LambdaStorage.__init__.<locals>.<lambda>", "aliases by function: defaultdict(lambda: {})",
                  factory=dict),
    ]

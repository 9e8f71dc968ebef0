"""What the lab's state needs to know of moto's SSM (issue 23; composed by :mod:`labkit.localcloud.server`)."""
from __future__ import annotations

import collections
from typing import Any

from labkit.localcloud.core.pickling import StatePickler, StateRule


def _tags_by_resource() -> collections.defaultdict[str, dict[str, str]]:
    return collections.defaultdict(dict)


def _parameter_dict(account_id: str, region_name: str, flags: dict[str, Any], items: dict[str, Any]) -> Any:
    from moto.ssm.models import ParameterDict

    parameters = ParameterDict(account_id, region_name)
    vars(parameters).update(flags)
    parameters.update(items)
    return parameters


def _reduce_parameters(parameters: Any, _pickler: StatePickler) -> Any:
    return _parameter_dict, (parameters.account_id, parameters.region_name, dict(vars(parameters)), dict(parameters))


def rules() -> list[StateRule]:
    from moto.ssm.models import ParameterDict

    return [
        StateRule(ParameterDict, "a defaultdict whose __init__ takes (account, region): pickle's way would call it "
                  "with the factory", reduce=_reduce_parameters),
        StateRule("SimpleSystemManagerBackend.__init__.<locals>.<lambda>", "tags by resource type and id: "
                  "defaultdict(lambda: defaultdict(dict))", factory=_tags_by_resource),
    ]

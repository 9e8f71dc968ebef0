"""The daemon's service models keep their shapes and operations as JSON text, each read when asked for (issue 28,
an idle lab's memory): botocore and moto see the same model as moto's own loader gives."""
from __future__ import annotations

import json
import threading

import pytest
from botocore.model import OperationNotFoundError, ServiceModel
from moto.core.loaders import create_loader

from labkit.localcloud.core import models
from labkit.localcloud.core.models import OnDemand


@pytest.fixture(scope="module")
def ec2() -> dict:
    return models._lean_loader().load_service_model("ec2", "service-2")


def test_the_model_is_botocores_without_documentation(ec2):
    original = create_loader().load_service_model("ec2", "service-2")
    assert isinstance(ec2["shapes"], OnDemand) and isinstance(ec2["operations"], OnDemand)
    assert list(ec2["shapes"]) == list(original["shapes"])  # every name, in the model's order
    assert list(ec2["operations"]) == list(original["operations"])
    for name in ("RunInstancesRequest", "Reservation", "InstanceStateName", "Filter"):
        read = json.loads(json.dumps(original["shapes"][name]))
        models._drop_documentation({"shapes": {name: read}})
        assert ec2["shapes"][name] == read
    assert ec2["shapes"]["Reservation"] is ec2["shapes"]["Reservation"]  # kept once read
    assert "Reservation" in ec2["shapes"] and "NoSuchShape" not in ec2["shapes"]
    with pytest.raises(KeyError):
        ec2["shapes"]["NoSuchShape"]


def test_botocore_reads_operations_and_shapes_through_it(ec2):
    model = ServiceModel(ec2, "ec2")
    operation = model.operation_model("DescribeVpcs")
    assert operation.http["method"] == "POST"
    assert "Filters" in operation.input_shape.members
    assert operation.output_shape.members["Vpcs"].member.name == "Vpc"
    assert len(model.operation_names) > 500
    with pytest.raises(OperationNotFoundError):
        model.operation_model("NoSuchOperation")


def test_a_walk_through_every_shape_keeps_only_the_last_read():
    shapes = OnDemand(*OnDemand.text_of({f"S{i}": {"type": "string", "max": i} for i in range(2000)}))
    assert [shapes[f"S{i}"]["max"] for i in range(2000)] == list(range(2000))
    assert shapes.kept == OnDemand.KEEP
    assert shapes["S0"] == {"type": "string", "max": 0}  # read again from its text
    empty = OnDemand(*OnDemand.text_of({}))
    assert len(empty) == 0 and list(empty) == []


def test_threads_reading_at_once_get_the_same_entries():
    shapes = OnDemand(*OnDemand.text_of({f"S{i}": {"type": "integer", "min": i} for i in range(3000)}))
    errors: list[BaseException] = []

    def read(offset: int) -> None:
        try:
            for i in range(3000):
                assert shapes[f"S{(i + offset) % 3000}"]["min"] == (i + offset) % 3000
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n * 700,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert shapes.kept <= OnDemand.KEEP

"""A stand-in for labkit.Lab on the aws path: the clients a test stubs with botocore's Stubber, quick polls."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar


class FakeLab:
    """What a step needs of a Lab: its name, region and tags, its (stubbed) clients, and a target's poll time."""

    name = "stub-lab"
    region = "eu-west-1"
    tags: ClassVar[list[dict[str, str]]] = [{"Key": "lab", "Value": "stub-lab"}]

    def __init__(self, **clients: Any) -> None:
        self._clients = clients
        self.target = SimpleNamespace(poll_seconds=0.01)  # each lab its own: a test may change it

    def client(self, name: str) -> Any:
        return self._clients[name]

    def tag_filter(self) -> list[dict[str, Any]]:
        return [{"Name": "tag:lab", "Values": [self.name]}]

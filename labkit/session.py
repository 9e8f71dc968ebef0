"""The Lab: configuration, target and boto3 clients, shared by every labkit function."""
from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from labkit.calls import CallRecorder
from labkit.config import LabConfig, config_from_environment, make_target

RETRIES = Config(retries={"max_attempts": 8, "mode": "standard"})


class Lab:
    """One lab: ``Lab(target="local", name="orders-lab", region="us-east-1")``.

    Every labkit function takes the lab as its first argument; clients are created once and reused.
    """

    def __init__(self, target: str | None = None, name: str | None = None, region: str | None = None,
                 **options: Any) -> None:
        self.config: LabConfig = config_from_environment(target=target, name=name, region=region, **options)
        self.target = make_target(self.config)
        self._session = boto3.Session(**self.target.session_kwargs())
        self.calls = CallRecorder()  # every call of this lab's clients (labkit.calls)
        self.calls.attach(self._session.events)
        self.target.guard(self._session)
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        confirmed = f", confirmed={self.target.confirmed}" if self.target.bills else ""
        return (f"Lab(target={self.config.target!r}, name={self.config.name!r}, region={self.config.region!r}"
                f"{confirmed})")

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def tags(self) -> list[dict[str, str]]:
        return self.config.tags

    def client(self, service: str, **config: Any) -> Any:
        """The lab's client of ``service``, made once; ``config`` (botocore ``Config`` options such as
        ``read_timeout``) gives a client of its own, over the lab's retries."""
        key = f"{service} {sorted(config.items())}" if config else service
        if key not in self._clients:
            self._clients[key] = self._session.client(service, endpoint_url=self.target.endpoint_url,
                                                      config=RETRIES.merge(Config(**config)) if config else RETRIES)
        return self._clients[key]

    @cached_property
    def account_id(self) -> str:
        account: str = self.client("sts").get_caller_identity()["Account"]
        return account

    def tag_filter(self) -> list[dict[str, Any]]:
        return [{"Name": "tag:lab", "Values": [self.name]}]

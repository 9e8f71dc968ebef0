"""The local cloud's changes to moto's SSM: Run Command runs in the instance's sandbox (served by the ``ec2``
service), and the calls moto lacks (listed, checked and applied by :mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.localcloud.core.patches import Patch, find


def patches() -> list[Patch]:
    """The SSM patches."""
    from moto.ssm import models as ssm
    from moto.ssm import responses as ssm_responses

    from labkit.localcloud.ec2.service import Ec2Service

    def send_command(original: Any) -> Any:
        def wrapper(self: Any, **kwargs: Any) -> Any:
            boxes = find(Ec2Service)
            if boxes is None:
                return original(self, **kwargs)
            return boxes.send_command(lambda: original(self, **kwargs), self.account_id, self.region_name, kwargs)
        return wrapper

    def response(method: str) -> Callable[[Any], Any]:
        def replace(_missing: None) -> Any:
            def wrapper(self: Any) -> str:
                boxes = find(Ec2Service)
                if boxes is None:
                    raise NotImplementedError(f"{method} is served by the local cloud's ec2 service")
                answer: str = getattr(boxes, method)(self)
                return answer
            return wrapper
        return replace

    return [
        Patch(ssm.SimpleSystemManagerBackend, "send_command", "SendCommand to a managed instance runs the "
              "commands in its sandbox; an unmanaged one is refused with InvalidInstanceId", send_command),
        Patch(ssm_responses.SimpleSystemManagerResponse, "list_command_invocations",
              "moto 5.2.5 lacks ListCommandInvocations (with Details)", response("list_command_invocations"), adds=True),
        Patch(ssm_responses.SimpleSystemManagerResponse, "describe_instance_information",
              "moto 5.2.5 lacks DescribeInstanceInformation: managed instances are those with an SSM role",
              response("describe_instance_information"), adds=True),
    ]

"""Two services a test registers in a real daemon (``--service``) to see that the hooks are called."""
from __future__ import annotations

from labkit.localcloud.awslambda.service import LambdaService
from labkit.localcloud.core.services import ApiRequest, CloudContext, Launch, Service, current_request

# operation -> the error code the refusing service answers with, as the service's own API spells it
REFUSED = {"CreateBucket": "AccessDenied", "CreateSecret": "AccessDeniedException", "CreateVpc": "UnauthorizedOperation",
           "CreateUser": "AccessDenied", "GetAccountSettings": "AccessDeniedException"}


class Probe(Service):
    """Records every request it sees (after IAM let it through), refuses the REFUSED operations."""

    name = "probe"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.seen: list[dict] = []
        self.launches: list[dict] = []
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def after_reset(self) -> None:
        self.events.append("after_reset")

    def stop_all(self) -> None:
        self.events.append("stop_all")

    def summary(self) -> dict:
        return {"requests": len(self.seen)}

    def routes(self) -> list:
        return [("GET", "/_labkit/probe", lambda _r: {
            "seen": self.seen, "launches": self.launches, "events": self.events,
            "finds_lambda": type(self.ctx.services.require(LambdaService)).__name__,
            "finds_second": self.ctx.services.require(SecondProbe).name}),
                ("GET", "/_labkit/probe/inside", lambda _r: inside())]

    def on_request(self, call: ApiRequest) -> object:
        self.seen.append({"service": call.service, "operation": call.operation, "region": call.region,
                          "access_key_id": call.access_key_id, "principal": call.annotations.get("principal")})
        code = REFUSED.get(call.operation or "")
        if code:
            return call.refuse(code, f"the probe refuses {call.operation}", status=403)
        call.annotations["probe"] = "let through"
        return None

    def on_launch(self, launch: Launch) -> None:
        request = current_request()
        launch.env["PROBE_LAUNCH"] = f"{launch.kind} {launch.resource}"
        annotations = request.annotations if request else {}
        launch.env["PROBE_PRINCIPAL"] = f"{annotations.get('principal')} {annotations.get('probe')}"
        launch.preload("libm.so.6")
        self.launches.append({"kind": launch.kind, "resource": launch.resource})


def inside() -> dict:
    """What the daemon holds of moto's catalogues (labkit.localcloud.iam.managed_policies, ec2.catalogue)."""
    from moto.core.utils import get_service_model
    from moto.iam.models import AWSManagedPolicy, iam_backends

    from labkit.localcloud.core import models as core_models

    aws = iam_backends["123456789012"]["aws"]
    return {"iam_partitions": {account: sorted(dict.keys(backends)) for account, backends in iam_backends.items()},
            "aws_managed_policies_made": sum(isinstance(p, AWSManagedPolicy) for p in dict.values(aws.managed_policies)),
            "one_ec2_model": get_service_model("ec2")._service_description
            is core_models.service_model("ec2")._service_description,
            "ec2_shapes": [(shapes := core_models.service_model("ec2")._service_description["shapes"]).kept,
                           len(shapes)]}


class SecondProbe(Service):
    """Runs after Probe: sees only what Probe let through, and preloads a library of its own."""

    name = "second-probe"

    def __init__(self, ctx: CloudContext) -> None:
        self.operations: list[str] = []

    def routes(self) -> list:
        return [("GET", "/_labkit/second-probe", lambda _r: {"operations": self.operations})]

    def on_request(self, call: ApiRequest) -> None:
        self.operations.append(call.operation or "")

    def on_launch(self, launch: Launch) -> None:
        launch.preload("libdl.so.2")
        launch.preload("libm.so.6")  # already there: not repeated

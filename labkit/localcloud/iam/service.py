"""IAM as a service of the local cloud: the request hook and the admin user.

:class:`IamService` creates the admin user (again after every reset) and runs the
:class:`~labkit.localcloud.iam.auth.Authorizer` as its request hook (before moto sees a request; the caller's ARN
becomes the request's ``principal`` annotation). What Lambda checks of an execution role lives with Lambda
(:mod:`labkit.localcloud.awslambda.roles`), through this package's public functions.

In realistic mode an IAM change reaches authorization and Lambda's role checks ``iam_propagation`` seconds later
(:mod:`.propagation`): the service keeps the state each IAM write request leaves.

``LABKIT_IAM=off`` in the daemon's environment still identifies callers but authorizes nothing; it exists
so ``bench/`` can measure what enforcement costs.

A checkpoint taken in (issue 23) keeps its users, roles and policies, but never the ``lab-admin`` keys of the lab
it was made in: this lab's own keys (its ``credentials`` file) replace them, so an instructor's keys never work in a
student's lab.
"""
from __future__ import annotations

import os
from typing import Any

from werkzeug.wrappers import Response

from labkit.localcloud.core.services import ApiRequest, CloudContext, Service
from labkit.localcloud.core.timing import TimingService
from labkit.localcloud.iam.auth import Authorizer
from labkit.localcloud.iam.principals import PROPAGATION, note_change

READS = ("Get", "List", "Generate", "Simulate")  # IAM operations that change nothing

class IamService(Service):
    """Every AWS API request is signed by a principal and authorized against its policies."""

    name = "iam"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.authorizer = Authorizer(enforce=os.environ.get("LABKIT_IAM", "on") != "off")

    def start(self) -> None:
        if self.ctx.state.relocation is not None:
            self.authorizer.forget_other_admin_keys(self.ctx.home)
        self.authorizer.install_admin(self.ctx.home)
        timing = self.ctx.services.find(TimingService)
        if timing is not None:
            timing.on_change(lambda _realistic: PROPAGATION.clear())

    def after_reset(self) -> None:
        PROPAGATION.clear()
        self.authorizer.install_admin(self.ctx.home)  # the same keys: they are kept in LABKIT_HOME/credentials

    def summary(self) -> dict[str, Any]:
        return {"enforcing": self.authorizer.enforce}

    def on_request(self, call: ApiRequest) -> Response | None:
        refusal = self.authorizer(call)
        if refusal is None:
            call.annotations["principal"] = call.request.environ.get("labkit.principal")
            if _changes_iam(call):
                note_change(before=True)
        return refusal

    def after_request(self, call: ApiRequest) -> None:
        if _changes_iam(call):
            note_change(before=False)


def _changes_iam(call: ApiRequest) -> bool:
    classified = call.classified
    return classified is not None and classified.service == "iam" and not (classified.operation or "").startswith(READS)

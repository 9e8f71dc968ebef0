"""AWS errors, rendered as each AWS protocol answers them (json, rest-json, query, ec2, rest-xml, rpc-v2-cbor).

One error type, :class:`AwsError`: a service package declares its errors as subclasses with AWS's code and HTTP
status on the class (as moto does in ``moto/<service>/exceptions.py``)::

    class InvalidInstanceId(AwsError):
        error_code = "InvalidInstanceId"

and raises them wherever it finds the fault: in a request hook before moto, or inside moto's handling of the
request (a patched backend method). Either way the answer is rendered here, in the protocol of the request
being served (:func:`labkit.localcloud.core.services.current_request`), so a boto3 ``ClientError`` carries the
same ``Error.Code`` and ``Error.Message`` as on AWS.
"""
from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response


class AwsError(HTTPException):
    """An error as AWS answers it: ``error_code`` and the HTTP status (``code``, werkzeug's name for it, which moto
    reads too) on the class, the message on the instance. ``details`` are S3's extra elements after the message
    (Expires, ServerTime), ``fields`` extra members of a JSON error body (Lambda's ``Reason``)."""

    error_code: ClassVar[str] = "InternalFailure"
    code: int | None = 400

    def __init__(self, message: str, *, error_code: str | None = None, status: int | None = None,
                 details: tuple[tuple[str, str], ...] = (), fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.message = message
        if error_code is not None:  # an error whose code depends on the protocol (IAM's authentication failures)
            self.error_code = error_code  # type: ignore[misc]  # this error's own code, over the class's ClassVar
        if status is not None:
            self.code = status
        self.details = details
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"

    @property
    def status(self) -> int:
        return self.code or 400

    def answer(self, protocol: str) -> Response:
        """The HTTP answer to a request of ``protocol``."""
        return render(self, protocol)

    # -- werkzeug's HTTPException interface, which moto's request dispatch uses when this is raised inside it --
    def _rendered(self) -> Response:
        from labkit.localcloud.core.services import current_request

        call = current_request()
        return render(self, call.protocol if call is not None else "json")

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        return self._rendered()

    def get_description(self, environ: Any = None, scope: Any = None) -> str:
        return self._rendered().get_data(as_text=True)

    @property
    def description(self) -> str:
        return self.get_description()

    @description.setter
    def description(self, _value: str) -> None:  # werkzeug's __init__ assigns it
        pass

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        return list(self._rendered().headers.items())


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    head = bytes([0x60 + n]) if n < 24 else (bytes([0x78, n]) if n < 256 else b"\x79" + struct.pack(">H", n))
    return head + data


def render(error: AwsError, protocol: str) -> Response:
    """The HTTP answer of ``error`` in ``protocol``."""
    request_id = str(uuid.uuid4())
    code, message, status = error.error_code, error.message, error.status
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message, **error.fields} if protocol == "json"
                          else {**error.fields, "Type": "User", "message": message})
        mimetype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        return Response(body, status=status, headers=headers, mimetype=mimetype)
    if protocol == "smithy-rpc-v2-cbor":
        cbor = b"\xa2" + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return Response(cbor, status=status, headers=headers, mimetype="application/cbor")
    if protocol == "ec2":
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code><Message>'
                f"{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    elif protocol == "rest-xml":
        details = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in error.details)
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
                f"</Message>{details}<RequestId>{request_id[:16].upper()}</RequestId><HostId>{request_id}</HostId></Error>")
        headers["x-amz-request-id"] = request_id[:16].upper()
    else:
        text = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return Response(text, status=status, headers=headers, mimetype="text/xml")

"""Refusals shaped as each AWS protocol answers them (json, rest-json, query, ec2, rest-xml, rpc-v2-cbor).

Codes and messages are AWS's own; a boto3 ``ClientError`` carries the same ``Error.Code`` and
``Error.Message`` as on AWS.
"""
from __future__ import annotations

import base64
import json
import struct
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your AWS "
             "Secret Access Key and signing method. Consult the service documentation for details.")
S3_SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your key and "
                "signing method.")
EC2_AUTH = "AWS was not able to validate the provided access credentials"

# (query, json/rest-json, ec2, s3) code and message for each way a caller can fail to authenticate
AUTH_FAILURES = {
    "unknown-key": (("InvalidClientTokenId", INVALID_TOKEN), ("UnrecognizedClientException", INVALID_TOKEN),
                    ("AuthFailure", EC2_AUTH),
                    ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")),
    "bad-token": (("InvalidClientTokenId", INVALID_TOKEN), ("UnrecognizedClientException", INVALID_TOKEN),
                  ("AuthFailure", EC2_AUTH), ("InvalidToken", "The provided token is malformed or otherwise invalid.")),
    "expired": (("ExpiredToken", EXPIRED_TOKEN), ("ExpiredTokenException", EXPIRED_TOKEN),
                ("RequestExpired", "Request has expired."), ("ExpiredToken", "The provided token has expired.")),
    "signature": (("SignatureDoesNotMatch", SIGNATURE), ("InvalidSignatureException", SIGNATURE),
                  ("AuthFailure", EC2_AUTH), ("SignatureDoesNotMatch", S3_SIGNATURE)),
    "unsigned": (("MissingAuthenticationToken", "Request is missing Authentication Token"),
                 ("MissingAuthenticationTokenException", "Missing Authentication Token"),
                 ("MissingAuthenticationToken", "Request is missing Authentication Token"),
                 ("AccessDenied", "Access Denied")),
}


@dataclass
class Refusal(Exception):
    """A request AWS would refuse: its error code, message and HTTP status."""

    code: str
    message: str
    status: int = 403
    details: tuple[tuple[str, str], ...] = ()  # S3 adds elements after the message (Expires, ServerTime)


def auth_failure(kind: str, protocol: str) -> Refusal:
    query, json_, ec2, s3 = AUTH_FAILURES[kind]
    code, message = {"query": query, "ec2": ec2, "rest-xml": s3}.get(protocol, json_)
    return Refusal(code, message, 401 if code == "AuthFailure" else (400 if protocol == "json" else 403))


def access_denied(protocol: str, service: str, principal_arn: str, action: str, resource: str,
                  explicit: bool) -> Refusal:
    """AWS's AccessDenied for ``action`` on ``resource`` (S3 quotes the resource; EC2 adds an encoded message)."""
    reason = ("with an explicit deny in an identity-based policy" if explicit
              else f"because no identity-based policy allows the {action} action")
    shown = f'"{resource}"' if protocol == "rest-xml" else resource
    message = f"User: {principal_arn} is not authorized to perform: {action} on resource: {shown} {reason}"
    if protocol == "ec2":
        encoded = base64.b64encode(json.dumps({"allowed": False, "explicitDeny": explicit, "action": action,
                                               "resource": resource, "principal": principal_arn}).encode()).decode()
        return Refusal("UnauthorizedOperation", f"You are not authorized to perform this operation. {message}. "
                                                f"Encoded authorization failure message: {encoded}", 403)
    if protocol == "json":
        return Refusal("AccessDeniedException", message, 400)
    if protocol in ("rest-json", "smithy-rpc-v2-cbor"):
        return Refusal("AccessDeniedException", message, 403)
    return Refusal("AccessDenied", message, 403)


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    head = bytes([0x60 + n]) if n < 24 else (bytes([0x78, n]) if n < 256 else b"\x79" + struct.pack(">H", n))
    return head + data


def render(refusal: Refusal, protocol: str) -> Response:
    """The HTTP answer of ``refusal`` in ``protocol``."""
    request_id = str(uuid.uuid4())
    code, message = refusal.code, refusal.message
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message} if protocol == "json"
                          else {"Type": "User", "message": message})
        mimetype = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
        return Response(body, status=refusal.status, headers=headers, mimetype=mimetype)
    if protocol == "smithy-rpc-v2-cbor":
        body = b"\xa2" + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return Response(body, status=refusal.status, headers=headers, mimetype="application/cbor")
    if protocol == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code><Message>'
                f"{escape(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    elif protocol == "rest-xml":
        details = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in refusal.details)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}'
                f"</Message>{details}<RequestId>{request_id[:16].upper()}</RequestId><HostId>{request_id}</HostId></Error>")
        headers["x-amz-request-id"] = request_id[:16].upper()
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return Response(body, status=refusal.status, headers=headers, mimetype="text/xml")

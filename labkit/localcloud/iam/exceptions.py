"""IAM's refusals: a caller who cannot be authenticated, and AccessDenied, in each protocol's words.

AWS answers the same fault with a different code in each protocol (query, json/rest-json, ec2, S3's rest-xml),
so these errors take their code from the request's protocol; they are :class:`AwsError` instances all the same,
rendered by the one renderer (:func:`labkit.localcloud.core.errors.render`).
"""
from __future__ import annotations

import base64
import json

from labkit.localcloud.core.errors import AwsError

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


class AuthFailure(AwsError):
    """The caller could not be authenticated (unknown key, bad token, expired, wrong signature, unsigned)."""

    code = 403


class AccessDenied(AwsError):
    """The caller's policies do not allow the action on the resource."""

    code = 403


class AuthorizationQueryParametersError(AwsError):
    """A presigned URL whose query-string authentication is malformed or expired (S3's wording)."""

    error_code = "AuthorizationQueryParametersError"
    code = 400


def auth_failure(kind: str, protocol: str) -> AuthFailure:
    """AWS's answer, in ``protocol``, to a caller who failed to authenticate in the way ``kind`` names."""
    query, json_, ec2, s3 = AUTH_FAILURES[kind]
    code, message = {"query": query, "ec2": ec2, "rest-xml": s3}.get(protocol, json_)
    return AuthFailure(message, error_code=code,
                       status=401 if code == "AuthFailure" else (400 if protocol == "json" else 403))


def access_denied(protocol: str, principal_arn: str, action: str, resource: str, explicit: bool) -> AccessDenied:
    """AWS's AccessDenied for ``action`` on ``resource`` (S3 quotes the resource; EC2 adds an encoded message)."""
    reason = ("with an explicit deny in an identity-based policy" if explicit
              else f"because no identity-based policy allows the {action} action")
    shown = f'"{resource}"' if protocol == "rest-xml" else resource
    message = f"User: {principal_arn} is not authorized to perform: {action} on resource: {shown} {reason}"
    if protocol == "ec2":
        encoded = base64.b64encode(json.dumps({"allowed": False, "explicitDeny": explicit, "action": action,
                                               "resource": resource, "principal": principal_arn}).encode()).decode()
        return AccessDenied(f"You are not authorized to perform this operation. {message}. "
                            f"Encoded authorization failure message: {encoded}", error_code="UnauthorizedOperation")
    if protocol == "json":
        return AccessDenied(message, error_code="AccessDeniedException", status=400)
    if protocol in ("rest-json", "smithy-rpc-v2-cbor"):
        return AccessDenied(message, error_code="AccessDeniedException")
    return AccessDenied(message, error_code="AccessDenied")

"""Signatures as AWS checks them: SigV4 in the ``Authorization`` header or in the query string (a presigned URL),
and S3's SigV2 presigned URL.

:func:`read` finds how a request is signed and returns a :class:`Signed`; :func:`matches` recomputes the
signature with the principal's secret over the request exactly as it arrived.

A presigned URL (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature`` and, for a role session, ``X-Amz-Security-Token`` in the query)
signs the canonical query string without ``X-Amz-Signature``; S3 signs the payload as ``UNSIGNED-PAYLOAD``,
other services the hash of the body. S3 checks its parameters (``AuthorizationQueryParametersError``) and
its expiry against its own clock: ``X-Amz-Date`` plus ``X-Amz-Expires`` against real time, answered with
``AccessDenied`` "Request has expired" and the ``Expires``/``ServerTime`` S3 shows. Other services ignore
``X-Amz-Expires`` and check the request time as for a signed header, which the local cloud does not check
(code in the lab signs with the lab clock, see :mod:`iam_auth`).

boto3 presigns S3 URLs with SigV2 in regions where S3 still takes it (us-east-1, the lab's region) unless the
client is configured for ``s3v4``: ``AWSAccessKeyId``, ``Expires`` (epoch seconds) and ``Signature`` (HMAC-SHA1
of the method, Content-MD5, Content-Type, Expires, the ``x-amz-*`` headers and the resource), checked the same
way with S3's errors.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import HmacV1Auth, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.requests import HeaderMap
from labkit.localcloud.iam.exceptions import AccessDenied, AuthorizationQueryParametersError

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
A_WEEK = 604800
QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders",
              "X-Amz-Expires")
MISSING = ("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
           "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
V2_QUERY_AUTH = ("AWSAccessKeyId", "Signature", "Expires")
V2_MISSING = "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
TWO_WAYS = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
            "parameter or the Authorization header should be specified")
AMZ_DATE = "%Y%m%dT%H%M%SZ"
SERVER_TIME = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Signed:
    """How a request says it is signed: the credential scope, the signed headers and the signature offered."""

    key_id: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    date: str
    token: str | None
    presigned: bool = False
    version: int = 4

    @property
    def s3(self) -> bool:
        return self.service == "s3"


def _query_error(message: str) -> AuthorizationQueryParametersError:
    return AuthorizationQueryParametersError(message)


def _scope(credential: str) -> tuple[str, str, str]:
    key_id, _, region, service, _ = (credential + "////").split("/", 4)
    return key_id, region, service


def _from_header(authorization: str, headers: HeaderMap) -> Signed:
    _, _, rest = authorization.partition(" ")
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    key_id, region, service = _scope(fields.get("Credential", ""))
    return Signed(key_id, region, service, tuple(h for h in fields.get("SignedHeaders", "").split(";") if h),
                  fields.get("Signature", ""), headers.get("X-Amz-Date", ""), headers.get("X-Amz-Security-Token"))


def _check_expiry(args: Mapping[str, str], now: dt.datetime) -> None:
    """S3's checks of ``X-Amz-Date`` and ``X-Amz-Expires``, in real time."""
    raw = args["X-Amz-Expires"]
    try:
        expires = int(raw)
    except ValueError:
        raise _query_error("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires > A_WEEK:
        raise _query_error("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
                           f"must be less than {A_WEEK} seconds")
    try:
        signed_at = dt.datetime.strptime(args["X-Amz-Date"], AMZ_DATE).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
    _refuse_after(signed_at + dt.timedelta(seconds=expires), now, (("X-Amz-Expires", raw),))


def _refuse_after(ends: dt.datetime, now: dt.datetime, shown: tuple[tuple[str, str], ...] = ()) -> None:
    if now > ends:
        raise AccessDenied("Request has expired", error_code="AccessDenied", details=(
            *shown, ("Expires", ends.strftime(SERVER_TIME)), ("ServerTime", now.strftime(SERVER_TIME))))


def _read_v2(args: Mapping[str, str], now: dt.datetime) -> Signed:
    """S3's SigV2 presigned URL: complete, not expired."""
    if any(name not in args for name in V2_QUERY_AUTH):
        raise AccessDenied(V2_MISSING, error_code="AccessDenied")
    try:
        ends = dt.datetime.fromtimestamp(int(args["Expires"]), dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise AccessDenied(V2_MISSING, error_code="AccessDenied") from None
    _refuse_after(ends, now)
    return Signed(args["AWSAccessKeyId"], "", "s3", (), args["Signature"], args["Expires"],
                  args.get("x-amz-security-token"), presigned=True, version=2)


def read(headers: HeaderMap, args: Mapping[str, str], protocol: str,
         now: dt.datetime | None = None) -> Signed | None:
    """The signature a request carries (header or query string), None when it carries none; a malformed or
    expired presigned S3 URL raises the :class:`~labkit.localcloud.core.errors.AwsError` S3 answers with."""
    authorization = headers.get("Authorization") or ""
    s3 = protocol == "rest-xml"
    if authorization.startswith(ALGORITHM) and not s3:  # the common case: the query string is not even parsed
        return _from_header(authorization, headers)
    presigned = "X-Amz-Credential" in args or "X-Amz-Algorithm" in args
    if s3 and (presigned or "Signature" in args) and authorization:
        raise AwsError(TWO_WAYS, error_code="InvalidArgument")
    if s3 and not presigned and "AWSAccessKeyId" in args:
        return _read_v2(args, now or dt.datetime.now(dt.timezone.utc))
    if not presigned:
        return _from_header(authorization, headers) if authorization.startswith(ALGORITHM) else None
    required = QUERY_AUTH if s3 else QUERY_AUTH[:-1]
    if any(name not in args for name in required):
        if s3:
            raise _query_error(MISSING)
        return None
    if args["X-Amz-Algorithm"] != ALGORITHM:
        if s3:
            raise _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
        return None
    if s3:
        _check_expiry(args, now or dt.datetime.now(dt.timezone.utc))
    key_id, region, service = _scope(args["X-Amz-Credential"])
    return Signed(key_id, region, service, tuple(h for h in args["X-Amz-SignedHeaders"].split(";") if h),
                  args["X-Amz-Signature"], args["X-Amz-Date"], args.get("X-Amz-Security-Token"), presigned=True)


def as_header(signed: Signed) -> str:
    """The ``Authorization`` header saying what a presigned URL's query string says."""
    scope = f"{signed.key_id}/{signed.date[:8]}/{signed.region}/{signed.service}/aws4_request"
    signed_headers = ";".join(signed.signed_headers)
    return f"{ALGORITHM} Credential={scope}, SignedHeaders={signed_headers}, Signature={signed.signature}"


# -- the signature ------------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _raw_target(environ: dict[str, Any], signed: Signed) -> tuple[str, str]:
    """The path and query as they arrived; a presigned URL's query without ``X-Amz-Signature``."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    path, _, query = raw.partition("?")
    if signed.presigned:
        query = "&".join(p for p in query.split("&") if not p.startswith(("X-Amz-Signature=", "Signature=")))
    return path, query


def _payload_hash(headers: HeaderMap, body: bytes, signed: Signed) -> str:
    if signed.presigned:
        return UNSIGNED_PAYLOAD if signed.s3 else hashlib.sha256(body).hexdigest()
    return headers.get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()


def _quick_signature(environ: dict[str, Any], headers: HeaderMap, body: bytes, signed: Signed, secret: str) -> str:
    """SigV4 written out (canonical request, string to sign, cached signing key): the common path."""
    path, query = _raw_target(environ, signed)
    uri = path if signed.s3 else quote(normalize_url_path(path), safe="/~")
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&")) if query else []
    canonical = "\n".join([
        environ["REQUEST_METHOD"].upper(), uri, "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed.signed_headers),
        ";".join(signed.signed_headers), _payload_hash(headers, body, signed)])
    scope = f"{signed.date[:8]}/{signed.region}/{signed.service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{signed.date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _signing_key(secret, signed.date[:8], signed.region, signed.service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class _V2Check(HmacV1Auth):  # type: ignore[misc]  # botocore ships no type hints: its classes are Any
    """botocore's SigV2 string to sign, with the URL's own ``Expires`` where a signer puts the time."""

    def __init__(self, credentials: Credentials, expires: str) -> None:
        super().__init__(credentials)
        self.expires = expires

    def _get_date(self) -> str:
        return self.expires


def _v2_signature(environ: dict[str, Any], headers: HeaderMap, args: Mapping[str, str], signed: Signed, secret: str,
                  token: str | None) -> str:
    """What a SigV2 presigned URL's ``Signature`` must be: the x-amz-*, Content-Type and Content-MD5 it names
    count as headers."""
    path, query = _raw_target(environ, signed)
    signing = HTTPHeaders()
    for source in (headers, args):
        for name, value in source.items():
            lowered = name.lower()
            if lowered in ("content-md5", "content-type") or lowered.startswith("x-amz-"):
                del signing[lowered]
                signing[lowered] = value
    split = urlsplit(f"http://{headers.get('Host')}{path}" + (f"?{query}" if query else ""))
    check = _V2Check(Credentials("-", secret, token), signed.date)
    signature: str = check.get_signature(environ["REQUEST_METHOD"], split, signing)
    return signature


def matches(environ: dict[str, Any], headers: HeaderMap, args: Mapping[str, str], body: bytes, signed: Signed,
            secret: str, token: str | None) -> bool:
    """The signature over the request exactly as it arrived (SigV4: where the quick computation differs,
    botocore's decides)."""
    if signed.version == 2:
        return secrets.compare_digest(_v2_signature(environ, headers, args, signed, secret, token),
                                      signed.signature)
    if "host" not in signed.signed_headers:
        return False
    if secrets.compare_digest(_quick_signature(environ, headers, body, signed, secret), signed.signature):
        return True
    path, query = _raw_target(environ, signed)
    url = f"http://{headers.get('Host')}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, data=body,
                         headers={name: headers.get(name, "") for name in signed.signed_headers})
    request.context["timestamp"] = signed.date
    credentials = Credentials("-", secret, token)
    if signed.presigned:
        kind = S3SigV4QueryAuth if signed.s3 else SigV4QueryAuth
    else:
        kind = S3SigV4Auth if signed.s3 else SigV4Auth
    auth = kind(credentials, signed.service, signed.region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return secrets.compare_digest(expected, signed.signature)

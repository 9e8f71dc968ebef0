"""A function's deployment package as GetFunction hands it out: a presigned S3 URL that downloads the zip.

AWS answers GetFunction with ``Code.Location``, "a presigned URL that you can use to download the deployment
package", valid for 10 minutes (``X-Amz-Expires=600``), on Lambda's own S3 bucket
(``awslambda-<region>-tasks``, key ``snapshots/<account>/<function>-<uuid>``), signed by Lambda. Here the URL is
the cloud's own endpoint, path style, signed with Lambda's service keys (which may ``s3:GetObject`` there and
nothing else); IAM checks the signature and the expiry as for any presigned URL, and the Lambda service answers
the GET with the zip (its request hook), since no such bucket exists in the account.
"""
from __future__ import annotations

import re
import threading
import uuid
from typing import Any

from botocore.config import Config
from werkzeug.wrappers import Response

from labkit.localcloud.core.models import botocore_session
from labkit.localcloud.core.services import INTERNAL_AGENT, ApiRequest
from labkit.localcloud.credentials import AccessKeys

EXPIRES = 600
BUCKET = re.compile(r"^awslambda-([a-z0-9-]+)-tasks$")
KEEP = 1000  # links remembered (each is valid 10 minutes; a lab asks for few)


class CodeDownloads:
    """The links GetFunction handed out, and the downloads they answer."""

    def __init__(self, endpoint: str, keys: AccessKeys) -> None:
        self.endpoint, self.keys = endpoint, keys
        self.links: dict[str, Any] = {}  # object key -> the function (moto's LambdaFunction) it downloads
        self.lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def location(self, fn: Any) -> str:
        """A new presigned URL for ``fn``'s zip."""
        key = f"snapshots/{fn.account_id}/{fn.function_name}-{uuid.uuid4()}"
        with self.lock:
            self.links[key] = fn
            while len(self.links) > KEEP:
                self.links.pop(next(iter(self.links)))
            client = self._clients.get(fn.region)
            if client is None:
                client = self._clients[fn.region] = botocore_session().create_client(
                    "s3", region_name=fn.region, endpoint_url=self.endpoint,
                    aws_access_key_id=self.keys.access_key_id, aws_secret_access_key=self.keys.secret_access_key,
                    config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                  user_agent_extra=INTERNAL_AGENT))
        url: str = client.generate_presigned_url("get_object", ExpiresIn=EXPIRES, Params={
            "Bucket": f"awslambda-{fn.region}-tasks", "Key": key})
        return url

    def answer(self, call: ApiRequest) -> Response | None:
        """The zip, for a GET of a link handed out (already authenticated by IAM); None for any other request."""
        classified = call.classified
        if classified is None or classified.service != "s3" or classified.operation not in ("GetObject", "HeadObject"):
            return None
        if not BUCKET.match(str(classified.params.get("Bucket", ""))):
            return None
        with self.lock:
            fn = self.links.get(str(classified.params.get("Key", "")))
        if fn is None:
            return call.refuse("AccessDenied", "Access Denied", 403)
        body = fn.code_bytes or b""
        return Response(b"" if classified.operation == "HeadObject" else body, mimetype="application/zip",
                        headers={"Content-Length": str(len(body))})

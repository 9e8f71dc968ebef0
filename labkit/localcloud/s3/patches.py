"""The local cloud's changes to moto's S3 (listed, checked and applied by :mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from labkit.localcloud.core.clock import lab_utcnow
from labkit.localcloud.core.patches import Patch
from labkit.localcloud.s3.state import BLOB


def patches() -> list[Patch]:
    """The S3 patches."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.s3 import models as s3_models
    from moto.s3.responses import S3Response
    from werkzeug.datastructures import ImmutableMultiDict

    def body_kept(_original: Callable[..., str | None]) -> Callable[..., str | None]:
        def _get_body(_self: Any, environ: dict[str, Any]) -> str | None:
            if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                return None
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return None
            if not size:
                return None
            data: bytes = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(data)  # always put back, whatever the bytes
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return None  # not a query API call: leave the service to the path and headers
        return _get_body

    def bytes_as_sent(original: Callable[..., None]) -> Callable[..., None]:
        def setup_class(self: Any, request: Any, *args: Any, **kwargs: Any) -> None:
            if not (request.method == "POST" and request.mimetype == "multipart/form-data"):
                request.get_data(cache=True)  # the bytes as sent; request.data now returns them
                vars(request).update(form=ImmutableMultiDict(), files=ImmutableMultiDict())  # and no form
            original(self, request, *args, **kwargs)
        return setup_class

    def forgets_saved_body(original: property) -> property:
        def setter(self: Any, new_value: bytes) -> None:
            vars(self).pop(BLOB, None)
            original.fset(self, new_value)  # type: ignore[misc]
        return property(original.fget, setter)

    return [Patch(s3_models.FakeKey, "value", "the lab's state keeps an object's body as a file named by its digest "
                  "(labkit.localcloud.s3.state); a new body forgets the digest of the old one", forgets_saved_body),
            Patch(DomainDispatcherApplication, "_get_body", "to route an unsigned request (a presigned URL) moto "
                  "reads a form-encoded body as UTF-8 and puts it back only when that works: a presigned PUT of "
                  "bytes that are not UTF-8 lost its body and hung reading the socket again", body_kept),
            Patch(S3Response, "setup_class", "S3 reads a form only in a browser upload (POST Object, "
                  "multipart/form-data); werkzeug parses any application/x-www-form-urlencoded body as a form, so "
                  "moto stored such a PutObject/UploadPart body as empty (or took its fields as parameters): every "
                  "other request's body is kept as the bytes sent", bytes_as_sent),
            Patch(s3_models, "utcnow", "S3's LastModified is lab time (labkit.localcloud.core.clock)", lab_utcnow)]

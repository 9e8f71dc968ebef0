"""S3 stores an object's bytes as sent, whatever Content-Type the upload names.

A body sent as ``application/x-www-form-urlencoded`` is bytes to S3 like any other (a web form's payload saved
as an object, a query string kept for later); the local cloud's HTTP layer must not parse it as a form.
"""
from __future__ import annotations

import pytest
from botocore.config import Config

from tests.helpers import open_url

BUCKET = "s3-bytes-as-sent"
FORM = "application/x-www-form-urlencoded"
BODIES = {
    "pairs": b"order_id=42&amount=9.50&note=a+b%20c",
    "moto-form-fields": b"key=reports/x.csv&file=payload",  # the field names S3's browser POST form uses
    "no-equals": b"just some text",
    "binary": bytes(range(256)) + b"=&=",
    "empty": b"",
}


@pytest.fixture(scope="module")
def s3(cloud):
    client = cloud.client("s3", config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_a_form_encoded_body_is_stored_as_sent(s3, body):
    s3.put_object(Bucket=BUCKET, Key="form/body", Body=body, ContentType=FORM)
    got = s3.get_object(Bucket=BUCKET, Key="form/body")
    assert got["Body"].read() == body
    assert got["ContentType"] == FORM
    assert got["ContentLength"] == len(body)


@pytest.mark.parametrize("body", [BODIES[k] for k in ("pairs", "moto-form-fields", "binary")],
                         ids=["pairs", "moto-form-fields", "binary"])
def test_a_presigned_form_encoded_put_is_stored_as_sent(s3, body):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "form/presigned",
                                                          "ContentType": FORM})
    assert open_url(url, "PUT", body, content_type=FORM)[0] == 200
    got = s3.get_object(Bucket=BUCKET, Key="form/presigned")
    assert (got["Body"].read(), got["ContentType"]) == (body, FORM)

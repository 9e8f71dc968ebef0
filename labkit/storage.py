"""Step 11: the report bucket (unique name, Block Public Access on, default encryption) and its reports."""
from __future__ import annotations

import io

import pandas as pd
from botocore.exceptions import ClientError

from labkit.names import bucket_name
from labkit.session import Lab
from labkit.tagging import error_code

__all__ = ["bucket_frame", "bucket_name", "create_bucket", "read_report", "reports_frame"]


def create_bucket(lab: Lab) -> str:
    s3, name = lab.client("s3"), bucket_name(lab)
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs = {} if lab.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": lab.region}}
        s3.create_bucket(Bucket=name, **kwargs)
        s3.get_waiter("bucket_exists").wait(Bucket=name)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": lab.tags})
    return name


def bucket_frame(lab: Lab) -> pd.DataFrame:
    s3, name = lab.client("s3"), bucket_name(lab)
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    rows = {"bucket": name, "block public access": all(block.values()),
            "default encryption": encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
            "region": lab.region}
    return pd.DataFrame({"setting": list(rows), "value": [v if isinstance(v, bool) else str(v) for v in rows.values()]})


def reports_frame(lab: Lab, prefix: str = "reports/") -> pd.DataFrame:
    """The report files in the bucket, newest last."""
    s3 = lab.client("s3")
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(lab), Prefix=prefix):
        rows += [{"key": o["Key"], "size (bytes)": o["Size"], "last modified": o["LastModified"]}
                 for o in page.get("Contents", [])]
    return pd.DataFrame(rows, columns=["key", "size (bytes)", "last modified"]).sort_values("key",
                                                                                           ignore_index=True)


def read_report(lab: Lab, key: str) -> pd.DataFrame:
    """A report CSV from S3 as a DataFrame (amounts kept exact as text, then shown as numbers)."""
    body = lab.client("s3").get_object(Bucket=bucket_name(lab), Key=key)["Body"].read()
    frame = pd.read_csv(io.BytesIO(body), dtype={"order_id": str, "amount": str})
    frame["amount"] = frame["amount"].astype(float)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame

"""The bucket on moto the S3 driver-level tests use: its name and keys, the driver's
settings for it, test data, and the multipart uploads moto holds."""

from __future__ import annotations

import functools
from typing import Any

from gateway.backends.s3.backend import S3Settings
from tests import drivers

MIB = 1024 * 1024
BUCKET = "sgw-test"
KEYS = {"access_key": "testing", "secret_key": "testing-secret"}

put = functools.partial(drivers.put, chunk=256 * 1024)
get = drivers.get


def driver_settings(endpoint: str, **overrides: Any) -> S3Settings:
    values: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": "gw/",
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "part_size": 5 * MIB,
        "concurrency": 2,
        **KEYS,
        **overrides,
    }
    return S3Settings(**values)


def pending_uploads(s3: Any) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))

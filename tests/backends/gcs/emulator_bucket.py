"""What the GCS driver-level tests share: the driver's settings for a bucket of the
emulator, test data, and what the emulator holds."""

from __future__ import annotations

import functools
from typing import Any

from gateway.backends.gcs.settings import GcsSettings
from tests import drivers
from tests.fake_gcs_server import FakeGcsServer

KIB = 1024
CHUNK = 256 * KIB  # the smallest chunk GCS allows: resumable uploads at small sizes

put = functools.partial(drivers.put, chunk=64 * KIB)
get = drivers.get


def driver_settings(server: FakeGcsServer, bucket: str, **overrides: Any) -> GcsSettings:
    values: dict[str, Any] = {
        "bucket": bucket,
        "prefix": "gw/",
        "emulator_host": server.endpoint,
        "chunk_size": CHUNK,
        "threads": 4,
        **overrides,
    }
    return GcsSettings(**values)


def stored_names(server: FakeGcsServer, bucket: str) -> list[str]:
    return server.object_names(bucket)

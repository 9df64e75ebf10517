"""Builds a driver from a bucket's configuration."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.config import BucketConfig


def build(bucket: BucketConfig) -> Backend:
    # Imported here so a gateway only loads the drivers it uses.
    if bucket.backend == "memory":
        from gateway.backends.memory.backend import MemoryBackend

        return MemoryBackend(quota_bytes=bucket.quota)
    if bucket.backend == "local":
        from gateway.backends.local.backend import LocalBackend

        assert bucket.path is not None
        return LocalBackend(bucket.path)
    if bucket.backend == "s3":
        from gateway.backends.s3.backend import S3Backend

        assert bucket.s3 is not None
        return S3Backend(bucket.s3)
    if bucket.backend == "gcs":
        from gateway.backends.gcs.backend import GcsBackend

        assert bucket.gcs is not None
        return GcsBackend(bucket.gcs)
    raise ValueError(f"unknown backend {bucket.backend!r}")

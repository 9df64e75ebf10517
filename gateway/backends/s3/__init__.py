"""The S3 driver (AWS and S3-compatible stores), kind "s3"."""

from __future__ import annotations

from gateway.backends.s3 import settings
from gateway.backends.spec import driver_spec

SPEC = driver_spec("s3", settings, "gateway.backends.s3.backend:S3Backend", detect=settings.detect)

"""The Google Cloud Storage driver, kind "gcs"."""

from __future__ import annotations

from gateway.backends.gcs import settings
from gateway.backends.spec import driver_spec

SPEC = driver_spec(
    "gcs", settings, "gateway.backends.gcs.backend:GcsBackend", detect=settings.detect
)

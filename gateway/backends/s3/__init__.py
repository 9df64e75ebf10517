"""The S3 driver (AWS and S3-compatible stores), kind "s3"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.observer import StoreObserver
from gateway.backends.s3 import settings
from gateway.backends.spec import driver_spec


def _build(config: settings.S3Settings, observer: StoreObserver | None) -> Backend:
    from gateway.backends.s3.backend import S3Backend

    return S3Backend(config, observer)


SPEC = driver_spec("s3", settings, _build, detect=settings.detect)

"""The Google Cloud Storage driver, kind "gcs"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.gcs import settings
from gateway.backends.observer import StoreObserver
from gateway.backends.spec import driver_spec


def _build(config: settings.GcsSettings, observer: StoreObserver | None) -> Backend:
    from gateway.backends.gcs.backend import GcsBackend

    return GcsBackend(config, observer)


SPEC = driver_spec("gcs", settings, _build, detect=settings.detect)

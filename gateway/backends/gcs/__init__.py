"""The Google Cloud Storage driver, kind "gcs"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.gcs import settings
from gateway.backends.gcs.settings import GcsSettings
from gateway.backends.spec import DriverSpec


def _build(config: GcsSettings) -> Backend:
    # Imports google-cloud-storage: only a gateway with a GCS bucket pays for it.
    from gateway.backends.gcs.backend import GcsBackend

    return GcsBackend(config)


SPEC = DriverSpec(
    kind="gcs",
    fields=settings.FIELDS,
    env_names=settings.ENV_NAMES,
    read=settings.read,
    build=_build,
    detect=settings.detect,
)

"""The S3 driver (AWS and S3-compatible stores), kind "s3"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.s3 import settings
from gateway.backends.s3.settings import S3Settings
from gateway.backends.spec import DriverSpec


def _build(config: S3Settings) -> Backend:
    # Imports aioboto3: only a gateway with an S3 bucket pays for it.
    from gateway.backends.s3.backend import S3Backend

    return S3Backend(config)


SPEC = DriverSpec(
    kind="s3",
    fields=settings.FIELDS,
    env_names=settings.ENV_NAMES,
    read=settings.read,
    build=_build,
    detect=settings.detect,
)

"""The local-disk driver: objects as files under a directory, kind "local"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.local import settings
from gateway.backends.local.settings import LocalSettings
from gateway.backends.spec import DriverSpec


def _build(config: LocalSettings) -> Backend:
    from gateway.backends.local.backend import LocalBackend

    return LocalBackend(config.path)


SPEC = DriverSpec(
    kind="local",
    fields=settings.FIELDS,
    env_names=settings.ENV_NAMES,
    read=settings.read,
    build=_build,
)

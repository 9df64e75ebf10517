"""The local-disk driver: objects as files under a directory, kind "local"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.local import settings
from gateway.backends.spec import driver_spec


def _build(config: settings.LocalSettings) -> Backend:
    from gateway.backends.local.backend import LocalBackend

    return LocalBackend(config.path)


SPEC = driver_spec("local", settings, _build)

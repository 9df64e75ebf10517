"""The local-disk driver: objects as files under a directory, kind "local"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.local import settings
from gateway.backends.observer import StoreObserver
from gateway.backends.spec import driver_spec


def _build(config: settings.LocalSettings, observer: StoreObserver | None) -> Backend:
    from gateway.backends.local.backend import LocalBackend

    return LocalBackend(config.path, observer)


SPEC = driver_spec("local", settings, _build)

"""The in-memory driver (tests, scratch space), kind "memory"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.memory import settings
from gateway.backends.observer import StoreObserver
from gateway.backends.spec import driver_spec


def _build(config: settings.MemorySettings, observer: StoreObserver | None) -> Backend:
    from gateway.backends.memory.backend import MemoryBackend

    return MemoryBackend(quota_bytes=config.quota)


SPEC = driver_spec("memory", settings, _build)

"""The in-memory driver (tests, scratch space), kind "memory"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.memory import settings
from gateway.backends.spec import driver_spec


def _build(config: settings.MemorySettings) -> Backend:
    from gateway.backends.memory.backend import MemoryBackend

    return MemoryBackend(quota_bytes=config.quota)


SPEC = driver_spec("memory", settings, _build)

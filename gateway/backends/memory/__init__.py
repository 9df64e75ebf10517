"""The in-memory driver (tests, scratch space), kind "memory"."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.memory import settings
from gateway.backends.memory.settings import MemorySettings
from gateway.backends.spec import DriverSpec


def _build(config: MemorySettings) -> Backend:
    from gateway.backends.memory.backend import MemoryBackend

    return MemoryBackend(quota_bytes=config.quota)


SPEC = DriverSpec(
    kind="memory",
    fields=settings.FIELDS,
    env_names=settings.ENV_NAMES,
    read=settings.read,
    build=_build,
)

"""The in-memory driver (tests, scratch space), kind "memory"."""

from __future__ import annotations

from gateway.backends.memory import settings
from gateway.backends.spec import driver_spec

SPEC = driver_spec(
    "memory",
    settings,
    "gateway.backends.memory.backend:MemoryBackend",
    arguments=lambda config: {"quota_bytes": config.quota},
)

"""The local-disk driver: objects as files under a directory, kind "local"."""

from __future__ import annotations

from gateway.backends.local import settings
from gateway.backends.spec import driver_spec

SPEC = driver_spec(
    "local",
    settings,
    "gateway.backends.local.backend:LocalBackend",
    arguments=lambda config: {"root": config.path},
)

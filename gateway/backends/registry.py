"""Every driver the gateway has. Adding one is a package exporting a
DriverSpec (gateway.backends.spec) and one line in SPECS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.backends import gcs, local, memory, s3
from gateway.backends.base import Backend
from gateway.backends.observer import StoreObserver
from gateway.backends.spec import DriverSpec

# In the order STORAGE_BACKEND's choices are listed and the environment is
# asked which driver it means: S3 before GCS, because Google's variables are
# often set machine-wide for other tools.
SPECS: tuple[DriverSpec[Any], ...] = (
    local.SPEC,
    memory.SPEC,
    s3.SPEC,
    gcs.SPEC,
)


def kinds() -> tuple[str, ...]:
    return tuple(spec.kind for spec in SPECS)


def spec_of(kind: str) -> DriverSpec[Any] | None:
    """The spec of that kind, or None when no driver has it."""
    return next((spec for spec in SPECS if spec.kind == kind), None)


def detect(env: Mapping[str, str]) -> str | None:
    """The kind of the first driver whose settings env (non-empty variables)
    holds, if any."""
    return next((s.kind for s in SPECS if s.detect is not None and s.detect(env)), None)


def build(kind: str, settings: Any, observer: StoreObserver | None = None) -> Backend:
    """The driver of that kind serving settings (which its spec read),
    reporting to observer."""
    spec = spec_of(kind)
    if spec is None:
        raise ValueError(f"unknown backend {kind!r}")
    return spec.build(settings, observer)

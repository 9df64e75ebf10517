"""What a driver tells the gateway about itself: DriverSpec.

Each driver package exports one (its SPEC) and gateway.backends.registry
lists them. The configuration reads a bucket's driver settings through the
spec of its kind, and the gateway builds the driver from them, so that
neither knows any driver's fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.backends.base import Backend
from gateway.domain.settings import BucketTable

Settings = TypeVar("Settings")


@dataclass(frozen=True, slots=True)
class DriverSpec(Generic[Settings]):
    # STORAGE_BACKEND's value and a bucket table's `backend`.
    kind: str
    # The fields a [buckets.NAME] table of this kind may hold, besides
    # `backend` and the settings every bucket may have.
    fields: tuple[str, ...]
    # The single-bucket setup's variables: {field: environment variable}.
    env_names: Mapping[str, str]
    # Settings from a bucket's table, checked; a problem raises ConfigError
    # naming the field (table.name_of). Imports nothing heavy.
    read: Callable[[BucketTable], Settings]
    # The driver serving those settings (its module is imported only here,
    # so that a gateway loads only the drivers it uses).
    build: Callable[[Settings], Backend]
    # Whether the environment (its non-empty variables) asks for this driver
    # when STORAGE_BACKEND does not name one.
    detect: Callable[[Mapping[str, str]], bool] | None = None

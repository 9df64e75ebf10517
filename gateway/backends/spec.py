"""What a driver tells the gateway about itself: DriverSpec.

Each driver package exports one (its SPEC, made by driver_spec from its
settings module) and gateway.backends.registry lists them. The configuration
reads a bucket's driver settings through the spec of its kind, and the
gateway builds the driver from them, so that neither knows any driver's
fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gateway.backends.base import Backend
from gateway.backends.observer import StoreObserver
from gateway.domain.settings import BucketTable

Settings = TypeVar("Settings")
Settings_co = TypeVar("Settings_co", covariant=True)


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
    # The driver serving those settings, reporting its store requests and
    # fsyncs to the observer if there is one (its module is imported only
    # here, so that a gateway loads only the drivers it uses).
    build: Callable[[Settings, StoreObserver | None], Backend]
    # Whether the environment (its non-empty variables) asks for this driver
    # when STORAGE_BACKEND does not name one.
    detect: Callable[[Mapping[str, str]], bool] | None = None


class SettingsModule(Protocol[Settings_co]):
    """A driver's settings module (gateway/backends/<driver>/settings.py):
    what DriverSpec's fields, env_names and read are."""

    @property
    def FIELDS(self) -> tuple[str, ...]: ...

    @property
    def ENV_NAMES(self) -> Mapping[str, str]: ...

    def read(self, table: BucketTable, /) -> Settings_co: ...


def driver_spec(
    kind: str,
    settings: SettingsModule[Settings],
    build: Callable[[Settings, StoreObserver | None], Backend],
    *,
    detect: Callable[[Mapping[str, str]], bool] | None = None,
) -> DriverSpec[Settings]:
    """The spec of a driver package: its settings module's fields, variables
    and reader, and build, which imports the driver's module when it is
    called (a driver's client library is heavy: aioboto3,
    google-cloud-storage; a gateway pays only for the drivers it uses)."""
    return DriverSpec(
        kind=kind,
        fields=settings.FIELDS,
        env_names=settings.ENV_NAMES,
        read=settings.read,
        build=build,
        detect=detect,
    )

"""Settings of one local-disk bucket, and how they are read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.domain.settings import BucketTable


@dataclass(frozen=True, slots=True)
class LocalSettings:
    # The bucket's directory (objects/, tmp/ and uploads/ below it).
    path: Path


# A bucket table's fields. quota is the memory driver's, accepted (and
# unused) here since the two drivers have always shared one list of fields.
FIELDS = ("path", "quota")
# No variable of its own: the single bucket lives in STORAGE_BASE_PATH/<name>.
ENV_NAMES: dict[str, str] = {}


def read(table: BucketTable) -> LocalSettings:
    return LocalSettings(Path(str(table.values.get("path") or table.base_path / table.bucket)))

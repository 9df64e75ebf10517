"""Settings of one in-memory bucket, and how they are read."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain.settings import BucketTable, parse_size


@dataclass(frozen=True, slots=True)
class MemorySettings:
    # What the bucket's objects and writes in progress may hold (None: no cap).
    quota: int | None = None


# A bucket table's fields. path is the local driver's, accepted (and unused)
# here since the two drivers have always shared one list of fields.
FIELDS = ("quota", "path")
ENV_NAMES = {"quota": "STORAGE_MEMORY_QUOTA"}


def read(table: BucketTable) -> MemorySettings:
    quota = table.values.get("quota")
    return MemorySettings(None if quota is None else parse_size(table.name_of("quota"), str(quota)))

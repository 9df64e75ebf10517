"""What a dedup bucket reports: its statistics, and what one garbage
collection sweep did (gateway/layers/dedup)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DedupStats:
    """What a bucket holds: its objects and the bytes they stand for
    (logical), its stored contents (blobs) and the bytes they take. In a
    plain bucket every object is its own blob."""

    objects: int = 0
    logical_bytes: int = 0
    blobs: int = 0
    stored_bytes: int = 0

    @property
    def ratio(self) -> float:
        """Logical bytes per stored byte (1.0 for an empty bucket)."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    @property
    def saved_bytes(self) -> int:
        return max(0, self.logical_bytes - self.stored_bytes)


@dataclass(slots=True)
class SweepResult:
    """One garbage collection sweep of a dedup bucket."""

    blobs_deleted: int = 0
    temps_deleted: int = 0
    markers_deleted: int = 0
    # The stored bytes of the blobs and temp objects deleted.
    bytes_deleted: int = 0
    # Unreferenced blobs a writer touched or revived meanwhile: kept.
    raced: int = 0
    # The bucket as the sweep's listing found it (before its deletions).
    stats: DedupStats = field(default_factory=DedupStats)

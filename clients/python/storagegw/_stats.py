"""bucket_stats: what a bucket holds (GetBucketStats), with its result type."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from storagegw._base import ClientBase
from storagegw._effects import Call, Flow
from storagegw._op import operation
from storagegw.v1 import storage_pb2

__all__ = ["BucketStats", "bucket_stats"]


@dataclass(frozen=True, slots=True)
class BucketStats:
    """A bucket's objects and the bytes they hold (logical), and the
    contents stored and the bytes they take: fewer in a dedup bucket, where
    each content is stored once (dedup_ratio = logical / stored)."""

    bucket: str
    dedup: bool
    objects: int
    logical_bytes: int
    blobs: int
    stored_bytes: int
    dedup_ratio: float
    saved_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@operation()
def bucket_stats(self: ClientBase, *, bucket: str | None = None) -> Flow[BucketStats]:
    """What the bucket holds, counted by the gateway by listing it whole."""
    request = storage_pb2.GetBucketStatsRequest(bucket=self._bucket(bucket))
    return _stats(request, self.timeout)


def _stats(request: storage_pb2.GetBucketStatsRequest, timeout: float | None) -> Flow[BucketStats]:
    found: storage_pb2.GetBucketStatsResponse = yield Call("GetBucketStats", request, timeout)
    return BucketStats(
        found.bucket,
        found.dedup,
        found.objects,
        found.logical_bytes,
        found.blobs,
        found.stored_bytes,
        found.dedup_ratio,
        found.saved_bytes,
    )

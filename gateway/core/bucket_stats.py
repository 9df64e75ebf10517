"""GetBucketStats: what a bucket holds, by listing it through the door."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.bucket_walk import walk
from gateway.core.buckets import Action, Buckets
from gateway.domain.dedup import DedupStats


@dataclass(frozen=True, slots=True)
class BucketStats:
    bucket: str
    dedup: bool
    stats: DedupStats


async def bucket_stats(buckets: Buckets, bucket: str) -> BucketStats:
    """The bucket's statistics: a dedup bucket's from its layer, a plain
    one's by listing (each object its own blob)."""
    target = buckets.open(bucket, "", Action.LIST)
    dedup = target.backend.capabilities.dedup
    if dedup is not None:
        return BucketStats(target.bucket, True, await dedup.dedup_stats())
    stats = DedupStats()
    async for meta in walk(target.backend):
        stats.objects += 1
        stats.logical_bytes += meta.size
    stats.blobs, stats.stored_bytes = stats.objects, stats.logical_bytes
    return BucketStats(target.bucket, False, stats)

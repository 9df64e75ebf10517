"""The sweep of pending objects: direct uploads nobody finalized, and
pending objects left behind.

Every bucket's staging prefix is listed. A direct upload (pending_uploads)
older than the grace period is finalized as FinalizeUpload would (without
preconditions): promoted, or refused and deleted; one the scanner could not
check is left for the next sweep. Any pending object older than the maximum
age is deleted (a direct upload never checked, a streamed write's pending
object that a crash left).

Safe on several replicas at once: every step is pinned to the generation
it read, so two sweeps finalizing the same upload make the same object (the
second finds the pending object gone, and counts it as raced).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.core.bucket_walk import walk
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.finalize import finalize_pending
from gateway.core.pending_uploads import direct_prefix, goes_direct, parse_pending, staging_prefix
from gateway.core.pinned_deletes import RACED, delete_older
from gateway.core.upload_checks import REFUSALS
from gateway.domain.clock import NS, nanoseconds
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import NO_CONDITIONS, ObjectMeta

log = logging.getLogger("storagegw")


@dataclass(slots=True)
class SweepCounts:
    finalized: int = 0
    # Refused by the upload policy or the scanner (deleted, or quarantined).
    refused: int = 0
    # Could not be checked now (the scanner unavailable...): left.
    left: int = 0
    # Older than the maximum age: deleted unchecked.
    expired: int = 0
    # Another sweep or a FinalizeUpload got there first.
    raced: int = 0


async def sweep_pending(
    buckets: Buckets,
    grace_s: float,
    max_age_s: float,
    now: float | None = None,
    max_size: int | None = None,
) -> dict[str, SweepCounts]:
    """{bucket: counts} for every bucket that checks its uploads. buckets
    should have no guards: the sweep acts for no caller. max_size: the
    gateway's object size limit."""
    now_ns = nanoseconds(now)
    counts: dict[str, SweepCounts] = {}
    for name, _ in buckets:
        bucket = buckets.open(name, "", Action.LIST)
        if bucket.scan is None and bucket.policy is None:
            continue
        counts[name] = found = SweepCounts()
        prefix = staging_prefix(bucket)
        async for meta in walk(bucket.backend, prefix):
            age_s = (now_ns - meta.update_time_ns) / NS
            if age_s > max_age_s:
                await _expire(bucket, meta, found, now_ns - int(max_age_s * NS))
            elif age_s > grace_s and meta.key.startswith(direct_prefix(prefix)):
                await _finalize(buckets, bucket, meta, found, max_size)
    return counts


async def _expire(bucket: Target, listed: ObjectMeta, found: SweepCounts, oldest_ns: int) -> None:
    """Delete a pending object last written before oldest_ns."""
    # Pinned to the generation a head finds (a listing's may be unknown).
    if await delete_older(bucket.backend, listed.key, None, oldest_ns):
        found.expired += 1
    else:
        found.raced += 1


async def _finalize(
    buckets: Buckets, bucket: Target, meta: ObjectMeta, found: SweepCounts, max_size: int | None
) -> None:
    try:
        name = parse_pending(meta.key)
        target = buckets.open(bucket.bucket, name.key, Action.WRITE)
    except GatewayError:
        return  # not a name SignUrl made: only the maximum age removes it
    if not goes_direct(target):
        return
    try:
        await finalize_pending(target, name, NO_CONDITIONS, max_size)
        found.finalized += 1
    except GatewayError as error:
        if error.reason in REFUSALS or error.reason is Reason.OBJECT_TOO_LARGE:
            found.refused += 1
        elif error.reason in RACED:
            found.raced += 1
        else:
            found.left += 1
            log.warning(
                "bucket %s: pending upload %s left for the next sweep: %s",
                bucket.bucket,
                meta.key,
                error.message,
            )

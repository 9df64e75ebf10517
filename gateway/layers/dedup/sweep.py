"""The dedup bucket's garbage collector and its statistics.

collect_garbage runs steps C, L, X, D, E of blobs.py on one bucket's inner
driver: safe on any replica, and beside other collectors (each step is
conditioned on the generation read). It takes `now` (seconds since the
epoch) so that tests drive it without waiting out the grace period, and
`dry_run`: the same reads, the deletes only counted (`storagegw cleanup
--dry-run`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.backends.base import Backend
from gateway.domain.clock import NS, nanoseconds
from gateway.domain.dedup import DedupStats, SweepResult
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, ListQuery, ObjectMeta
from gateway.layers.dedup.blobs import (
    CONDEMNED,
    delete_if,
    head_or_none,
    is_condemned,
    write_marker,
)
from gateway.layers.dedup.names import (
    RESERVED_PREFIX,
    TEMP_PREFIX,
    Pointer,
    blob_digest,
    blob_key,
    marker_digest,
    marker_key,
)

_PAGE = 1000
_HEADS_AT_ONCE = 16


@dataclass(slots=True)
class _Reserved:
    blobs: dict[bytes, ObjectMeta] = field(default_factory=dict)
    markers: dict[bytes, ObjectMeta] = field(default_factory=dict)
    temps: list[ObjectMeta] = field(default_factory=list)


async def _list(backend: Backend, prefix: str, start_after: str = "") -> list[ObjectMeta]:
    found: list[ObjectMeta] = []
    token = ""
    while True:
        query = ListQuery(page_size=_PAGE, prefix=prefix, start_after=start_after, page_token=token)
        page = await backend.list(query)
        found += page.objects
        token = page.next_page_token
        if not token:
            return found


async def _reserved(backend: Backend) -> _Reserved:
    found = _Reserved()
    for meta in await _list(backend, RESERVED_PREFIX):
        if meta.key.startswith(TEMP_PREFIX):
            found.temps.append(meta)
        elif (digest := marker_digest(meta.key)) is not None:
            found.markers[digest] = meta
        elif (digest := blob_digest(meta.key)) is not None:
            found.blobs[digest] = meta
    return found


async def _references(backend: Backend, stats: DedupStats) -> set[bytes]:
    """The SHA-256 of every reference's blob (stats: their count and size)."""
    entries = [m for m in await _list(backend, "") if not m.key.startswith(RESERVED_PREFIX)]
    limit = asyncio.Semaphore(_HEADS_AT_ONCE)

    async def pointer(entry: ObjectMeta) -> tuple[Pointer | None, int] | None:
        if not entry.metadata:
            async with limit:
                try:
                    entry = await backend.head(entry.key)
                except GatewayError as error:
                    if error.reason is Reason.OBJECT_NOT_FOUND:
                        return None
                    raise
        found = Pointer.of(entry)
        return found, entry.size if found is None else found.size

    named: set[bytes] = set()
    for result in await asyncio.gather(*(pointer(entry) for entry in entries)):
        if result is None:
            continue
        found, size = result
        stats.objects += 1
        stats.logical_bytes += size
        if found is not None:
            named.add(found.sha256)
    return named


def _age_s(meta: ObjectMeta, now_ns: int) -> float:
    return (now_ns - meta.update_time_ns) / NS


async def bucket_stats(backend: Backend) -> DedupStats:
    """The bucket's statistics, by listing (backend: the layer's inner driver)."""
    stats = DedupStats()
    reserved = await _reserved(backend)
    stats.blobs = len(reserved.blobs)
    stats.stored_bytes = sum(meta.size for meta in reserved.blobs.values())
    await _references(backend, stats)
    return stats


async def collect_garbage(
    backend: Backend, grace_s: float, now: float | None = None, dry_run: bool = False
) -> SweepResult:
    """One sweep of a dedup bucket (backend: the layer's inner driver);
    dry_run: count what it would delete, and delete nothing."""
    now_ns = nanoseconds(now)
    result = SweepResult()
    reserved = await _reserved(backend)
    result.stats.blobs = len(reserved.blobs)
    result.stats.stored_bytes = sum(meta.size for meta in reserved.blobs.values())
    for temp in reserved.temps:
        if _age_s(temp, now_ns) > grace_s and await _delete_old(
            backend, temp.key, now_ns, grace_s, dry_run
        ):
            result.temps_deleted += 1
            result.bytes_deleted += temp.size
    # C: every candidate's blob and marker, read before the references are listed.
    candidates: dict[bytes, tuple[ObjectMeta, ObjectMeta | None]] = {}
    for digest, listed in reserved.blobs.items():
        if _age_s(listed, now_ns) <= grace_s:
            continue
        blob = await head_or_none(backend, blob_key(digest))
        marker = await head_or_none(backend, marker_key(digest))
        if blob is None or _age_s(blob, now_ns) <= grace_s:
            continue
        if marker is not None and _age_s(marker, now_ns) <= grace_s:
            continue
        candidates[digest] = (blob, marker)
    # L: after C.
    named = await _references(backend, result.stats)
    for digest, (blob, marker) in candidates.items():
        if digest in named:
            continue
        if dry_run or await _condemn(backend, digest, blob, marker):
            result.blobs_deleted += 1
            result.bytes_deleted += blob.size
        else:
            result.raced += 1
    for digest, listed in reserved.markers.items():
        if digest in reserved.blobs or digest in named or _age_s(listed, now_ns) <= grace_s:
            continue
        # A marker without its blob: a writer killed before its promotion,
        # or a sweep before its last step.
        if await _delete_old(backend, listed.key, now_ns, grace_s, dry_run):
            result.markers_deleted += 1
    return result


async def _condemn(
    backend: Backend, digest: bytes, blob: ObjectMeta, marker: ObjectMeta | None
) -> bool:
    """Steps X, D, E; whether the blob was deleted."""
    if marker is not None and is_condemned(marker):
        condemned = marker  # a sweep killed after X: go on with its condemnation
    else:
        try:
            condemned = await write_marker(backend, digest, CONDEMNED, marker)
        except GatewayError as error:
            if error.reason in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND):
                return False  # a writer touched it
            raise
    deleted = await delete_if(
        backend, blob_key(digest), Conditions(if_generation_match=blob.generation)
    )
    await delete_if(
        backend, marker_key(digest), Conditions(if_generation_match=condemned.generation)
    )
    return deleted


async def _delete_old(
    backend: Backend, key: str, now_ns: int, grace_s: float, dry_run: bool
) -> bool:
    """Delete key if, read again, it is still older than the grace period
    (pinned to the generation read); dry_run: whether it would."""
    meta = await head_or_none(backend, key)
    if meta is None or _age_s(meta, now_ns) <= grace_s:
        return False
    return dry_run or await delete_if(backend, key, Conditions(if_generation_match=meta.generation))

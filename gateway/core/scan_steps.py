"""The steps a scanned object goes through once it is stored, each working
on any stored object (a write's pending object, a direct upload's, one a
rescan finds): scan it by reading it back, promote it to its key, or
quarantine its bytes; and the cleanup of a pending object.

Promotion is the driver's move where it has one (capabilities.mover: a
rename), else its own copy (server-side on S3 and GCS) and a delete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.backends.base import Backend
from gateway.core.buckets import Target
from gateway.core.ingest import Expected, Incoming, store
from gateway.core.scanning import (
    QUARANTINE_FROM_BUCKET,
    QUARANTINE_FROM_KEY,
    SCAN_SIGNATURE,
    Scanner,
    ScanPolicy,
    ScanStatus,
    Verdict,
    with_status,
)
from gateway.domain.conditions import check as check_conditions
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import NO_CONDITIONS, Conditions, CopyRequest, ObjectMeta, WriteOptions
from gateway.domain.verdicts import malware_detected

SCAN_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Relabel:
    """Content type and metadata a promoted object gets instead of those it
    was stored with (a scan status that changed)."""

    content_type: str
    metadata: Mapping[str, str]


class Closeable(Protocol):
    async def close(self) -> None: ...


@contextlib.asynccontextmanager
async def closed_on_failure(scan: Closeable) -> AsyncIterator[None]:
    """Close scan (a session or feed) if the block fails, whatever happens
    to the caller meanwhile, and let the failure go on."""
    try:
        yield
    except BaseException:
        await asyncio.shield(scan.close())
        raise


async def check_now(backend: Backend, key: str, conditions: Conditions) -> None:
    """PRECONDITION_FAILED (or NOT_MODIFIED...) at once when conditions do
    not hold at key now: a write staged at a pending key is checked again
    when promoted, but need not stream its bytes to fail there."""
    if not conditions.any:
        return
    check_conditions(key, conditions, await current_object(backend, key), read=False)


async def current_object(backend: Backend, key: str) -> ObjectMeta | None:
    """The object at key now; None when there is none."""
    try:
        return await backend.head(key)
    except GatewayError as error:
        if error.reason is not Reason.OBJECT_NOT_FOUND:
            raise
        return None


def stores_unscanned(store_unscanned: bool, error: GatewayError) -> bool:
    """Whether a scanner's failure lets the object be stored unscanned: the
    scanner is unavailable, and the bucket (store_unscanned: its
    on_unavailable is "store") takes objects without a verdict."""
    return store_unscanned and error.reason is Reason.SCANNER_UNAVAILABLE


async def scan_stored(scanner: Scanner, backend: Backend, key: str) -> Verdict:
    """The verdict on the object at key, read back and streamed to the
    scanner; SCANNER_UNAVAILABLE if there is none."""
    _, verdict = await scan_object(scanner, backend, key)
    return verdict


async def scan_object(scanner: Scanner, backend: Backend, key: str) -> tuple[ObjectMeta, Verdict]:
    """The object at key as read (what follows may pin its generation) and
    the verdict on its bytes, streamed to the scanner."""
    session = await scanner.open()
    try:
        reader = await backend.open_read(key, 0, None, NO_CONDITIONS)
        try:
            meta = reader.meta
            async for chunk in reader.chunks(SCAN_CHUNK_SIZE):
                await session.feed(chunk)
        finally:
            await reader.close()
        return meta, await session.verdict()
    finally:
        await asyncio.shield(session.close())


async def promote(
    backend: Backend,
    pending_key: str,
    key: str,
    conditions: Conditions,
    relabel: Relabel | None = None,
) -> ObjectMeta:
    """Make the object at pending_key the object at key, when conditions
    hold there; the pending object is gone afterwards if this succeeded.
    relabel: what it is to carry instead of its own content type and
    metadata (then a copy, whatever the driver)."""
    mover = backend.capabilities.mover
    if mover is not None and relabel is None:
        return await mover.move(pending_key, key, conditions)
    if relabel is None:
        options = WriteOptions(conditions=conditions)
    else:
        options = WriteOptions(
            content_type=relabel.content_type,
            metadata=dict(relabel.metadata),
            conditions=conditions,
        )
    request = CopyRequest(pending_key, key, options=options, replace_metadata=relabel is not None)
    meta = await backend.copy(request)
    await remove(backend, pending_key)
    return meta


def quarantine_key(bucket: str, key: str) -> str:
    """Where an infected object of bucket's key is kept in quarantine."""
    return f"{bucket}/{key}"


async def quarantine(
    policy: ScanPolicy, target: Target, stored_key: str, verdict: Verdict, scanner: str
) -> str | None:
    """Copy the (infected) object at stored_key of target's backend (target's
    own key, or its pending object's) into the quarantine bucket of policy,
    if it has one, at the key that names where it came from (target's
    bucket and key), checked against its checksums, with metadata
    naming the signature, the scanner, the time and that origin. The stored
    object is left as is: the caller deletes it. Where the bytes were kept
    (None: the bucket has no quarantine)."""
    destination = policy.quarantine
    if destination is None:
        return None
    bucket, key = target.bucket, target.key
    where = quarantine_key(bucket, key)
    reader = await target.backend.open_read(stored_key, 0, None, NO_CONDITIONS)
    try:
        original = reader.meta
        metadata = with_status(
            original.metadata,
            ScanStatus.INFECTED,
            scanner,
            **{
                SCAN_SIGNATURE: verdict.signature or "",
                QUARANTINE_FROM_BUCKET: bucket,
                QUARANTINE_FROM_KEY: key,
            },
        )
        options = WriteOptions(content_type=original.content_type, metadata=metadata)
        expected = Expected(size=original.size, crc32c=original.crc32c)
        incoming = Incoming(reader.chunks(SCAN_CHUNK_SIZE), expected, with_sha256=False)
        await store(destination, where, options, incoming)
    finally:
        await reader.close()
    return where


def malware_refusal(
    policy: ScanPolicy, key: str, verdict: Verdict, where: str | None
) -> GatewayError:
    """The MALWARE_DETECTED that tells the caller of key what was found and
    where quarantine() kept its bytes (None: nowhere)."""
    return malware_detected(
        key=key,
        signature=verdict.signature,
        quarantine_bucket=policy.quarantine_bucket if where else None,
        quarantine_key=where,
    )


async def remove(backend: Backend, key: str) -> None:
    """Delete a pending object whatever happens to the caller meanwhile."""
    await asyncio.shield(backend.delete(key))


async def remove_quietly(backend: Backend, key: str) -> None:
    """remove(), when a failure is being reported already: a pending object
    left behind stays hidden (a sweep of the staging prefix removes it)."""
    with contextlib.suppress(GatewayError, OSError):
        await remove(backend, key)

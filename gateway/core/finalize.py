"""FinalizeUpload: a direct upload's pending object (gateway.core.pending_uploads)
checked as a streamed write would be, then made the object at its key, or
refused.

    pending object ──► upload policy on its first bytes ──► refused: deleted
         │             (and its size, declared type, metadata)
         └──────────► all its bytes to the scanner ──► infected: quarantined, deleted
                                                   └─► clean: copied to the key
                                                       marked scan=clean, deleted

Every read and the copy are pinned to the pending object's generation: a
URL stays valid until it expires, and bytes uploaded again meanwhile must
not reach the key unchecked. A scanner that cannot be reached leaves the
pending object where it is, for a retry or the sweep (unless the bucket
stores unscanned objects: then it is promoted marked scan=skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from gateway.core.buckets import Action, Buckets, Target
from gateway.core.ingest import check_declared_size
from gateway.core.objects import StoredObject
from gateway.core.pending_uploads import (
    UPLOAD_TOKEN,
    PendingName,
    goes_direct,
    parse_pending,
    staging_prefix,
)
from gateway.core.scan_steps import (
    SCAN_CHUNK_SIZE,
    closed_on_failure,
    current_object,
    malware_refusal,
    quarantine,
    stores_unscanned,
)
from gateway.core.scanned_writes import ScanFeed
from gateway.core.scanning import ScanStatus, Verdict, with_status, without_reserved
from gateway.core.upload_checks import REFUSALS, Inspector, upload_inspectors
from gateway.domain.errors import GatewayError, Reason, invalid_argument
from gateway.domain.objects import Conditions, CopyRequest, ObjectMeta, WriteOptions


@dataclass(frozen=True, slots=True)
class Checked:
    """What the checks of a pending object said: its verdict (None: not
    scanned, the bucket does not scan or the scanner was unavailable and the
    bucket stores unscanned objects) and what scanned it."""

    verdict: Verdict | None
    scanner: str = ""


async def finalize(
    buckets: Buckets,
    bucket: str,
    pending_upload: str,
    conditions: Conditions,
    max_size: int | None = None,
) -> StoredObject:
    """The FinalizeUpload RPC: a write of the pending upload's real key at
    the door, then finalize_pending."""
    name = parse_pending(pending_upload)
    target = buckets.open(bucket, name.key, Action.WRITE)
    if not goes_direct(target) or name.staging_prefix != staging_prefix(target):
        raise invalid_argument(
            f"{pending_upload!r} is not a pending upload of bucket {target.bucket!r}",
            field="pending_upload",
        )
    meta = await finalize_pending(target, name, conditions, max_size)
    return StoredObject(target.bucket, meta)


async def finalize_pending(
    target: Target, name: PendingName, conditions: Conditions, max_size: int | None = None
) -> ObjectMeta:
    """The object the pending upload name became at target's key (conditions
    holding there), or the refusal it got (MALWARE_DETECTED, TYPE_NOT_ALLOWED,
    OBJECT_TOO_LARGE past max_size, the gateway's limit, which a presigned
    PUT cannot bound...)."""
    pending = await current_object(target.backend, name.pending_key)
    if pending is None:
        return await _finalized_before(target, name)
    try:
        check_declared_size(pending.size, max_size)
        checked = await check_pending(target, pending)
    except GatewayError as error:
        if error.reason in REFUSALS or error.reason is Reason.OBJECT_TOO_LARGE:
            await drop(target, pending)
        raise  # else (no verdict, the object changed meanwhile): left for a retry
    if checked.verdict is not None and checked.verdict.infected:
        raise await _quarantined(target, pending, checked)
    return await _promote(target, name, pending, checked, conditions)


async def check_pending(target: Target, pending: ObjectMeta) -> Checked:
    """Run the bucket's upload policy and scanner over the pending object;
    the policy's refusal as a GatewayError."""
    inspectors = upload_inspectors(
        target, pending.content_type, without_reserved(pending.metadata), pending.size
    )
    head_size = max((inspector.head_size for inspector in inspectors), default=0)
    policy = target.scan
    feed: ScanFeed | None = None
    scanner = ""
    if policy is not None:
        scanner = policy.scanner.name
        try:
            session = await policy.scanner.open()
        except GatewayError as error:
            if not stores_unscanned(policy.store_unscanned, error):
                raise
        else:
            feed = ScanFeed(session, policy.store_unscanned)
            async with closed_on_failure(feed):
                scanner = await policy.scanner.version()
    try:
        if feed is not None or head_size:
            await _read_through(target, pending, inspectors, head_size, feed)
        for inspector in inspectors:
            await inspector.check_end(pending.size)
        verdict = None if feed is None else await feed.verdict()
    finally:
        if feed is not None:
            await asyncio.shield(feed.close())
    return Checked(verdict, scanner)


async def _read_through(
    target: Target,
    pending: ObjectMeta,
    inspectors: tuple[Inspector, ...],
    head_size: int,
    feed: ScanFeed | None,
) -> None:
    """Show the first head_size bytes to the inspectors and every byte to
    the scanner (feed), reading the pending object once."""
    pinned = Conditions(if_generation_match=pending.generation)
    reader = await target.backend.open_read(pending.key, 0, None, pinned)
    head = b""
    try:
        async for chunk in reader.chunks(SCAN_CHUNK_SIZE):
            if len(head) < head_size:
                head += chunk[: head_size - len(head)]
                if len(head) == head_size:
                    await _show_head(inspectors, head)
            if feed is None:
                if len(head) >= head_size:
                    break
                continue
            await feed.feed(chunk)
    finally:
        await reader.close()
    if len(head) < head_size:
        await _show_head(inspectors, head)  # an object smaller than the window


async def _show_head(inspectors: tuple[Inspector, ...], head: bytes) -> None:
    for inspector in inspectors:
        if inspector.head_size:
            await inspector.check_head(head[: inspector.head_size])


async def _promote(
    target: Target,
    name: PendingName,
    pending: ObjectMeta,
    checked: Checked,
    conditions: Conditions,
) -> ObjectMeta:
    """Copy the checked pending object to its key, marked with its scan
    status and its upload's token, and delete it."""
    if target.scan is None:
        metadata = without_reserved(pending.metadata)
        metadata[UPLOAD_TOKEN] = name.token
    else:
        status = ScanStatus.SKIPPED if checked.verdict is None else ScanStatus.CLEAN
        metadata = with_status(
            pending.metadata, status, checked.scanner, **{UPLOAD_TOKEN: name.token}
        )
    options = WriteOptions(
        content_type=pending.content_type, metadata=metadata, conditions=conditions
    )
    request = CopyRequest(
        pending.key,
        target.key,
        source_conditions=Conditions(if_generation_match=pending.generation),
        options=options,
        replace_metadata=True,
    )
    try:
        meta = await target.backend.copy(request)
    except GatewayError as error:
        if error.reason is Reason.PRECONDITION_FAILED and await _unchanged(target, pending):
            # The caller's conditions failed at the key: this upload will
            # never be its object (the sweep must not make it so later).
            await drop(target, pending)
        raise
    await drop(target, pending)
    return meta


async def _unchanged(target: Target, pending: ObjectMeta) -> bool:
    """Whether the pending object is still the one that was checked."""
    try:
        now = await target.backend.head(pending.key)
    except GatewayError:
        return False
    return now.generation == pending.generation


async def _quarantined(target: Target, pending: ObjectMeta, checked: Checked) -> GatewayError:
    """Keep an infected pending object's bytes in quarantine (where the
    bucket has one), delete it, and say so."""
    policy = target.scan
    verdict = checked.verdict
    assert policy is not None
    assert verdict is not None
    where = await quarantine(policy, target, pending.key, verdict, checked.scanner)
    await drop(target, pending)
    return malware_refusal(policy, target.key, verdict, where)


async def drop(target: Target, pending: ObjectMeta) -> None:
    """Delete the pending object that was checked (not bytes uploaded again
    since), whatever happens to the caller meanwhile."""
    pinned = Conditions(if_generation_match=pending.generation)
    with contextlib.suppress(GatewayError):
        await asyncio.shield(target.backend.delete(pending.key, pinned))


async def _finalized_before(target: Target, name: PendingName) -> ObjectMeta:
    """A finalize retried after it succeeded: the object its upload became,
    if that is still what is at the key; OBJECT_NOT_FOUND otherwise."""
    missing = GatewayError(
        Reason.OBJECT_NOT_FOUND,
        f"no pending upload {name.pending_key!r}: never uploaded, refused, or deleted",
        key=name.key,
    )
    meta = await current_object(target.backend, target.key)
    if meta is None or meta.metadata.get(UPLOAD_TOKEN) != name.token:
        raise missing
    return meta

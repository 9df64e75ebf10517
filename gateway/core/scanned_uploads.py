"""Resumable uploads (and any object stored whole before its scan) in a
scanning bucket.

An upload's bytes arrive in several streams, perhaps through several
replicas: they cannot stream into one scan. Its driver's upload is of a
pending key (UploadRef.stored_key) instead of its own, and commits there;
the object is then scanned by reading it back, and promoted, quarantined or
removed as a Put's pending object is (scanned_writes.settle). settle_stored
does that for any stored pending object: a direct upload's, finalized, too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from gateway.core.buckets import Target
from gateway.core.scan_steps import (
    check_now,
    current_object,
    remove_quietly,
    scan_stored,
    stores_unscanned,
)
from gateway.core.scanned_writes import settle
from gateway.core.scanning import ScanStatus, with_status
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import NO_CONDITIONS, Conditions, ObjectMeta, WriteOptions
from gateway.domain.verdicts import upload_refused_by_scan


@dataclass(frozen=True, slots=True)
class Staged:
    """Where a scanning bucket's upload is stored until its verdict."""

    key: str
    options: WriteOptions


async def staged_upload(target: Target, options: WriteOptions) -> Staged | None:
    """The pending key and driver options of an upload starting in target's
    bucket (None: not a scanning bucket). The write's conditions are checked
    now against its key, and again when it is promoted."""
    policy = target.scan
    if policy is None:
        return None
    await check_now(target.backend, target.key, options.conditions)
    # Marked clean, provisionally, as a Put's pending object is, with the
    # scanner's version as of now: if it differs at the scan (or the
    # scanner cannot say now), the promotion relabels the object (a copy).
    try:
        version = await policy.scanner.version()
    except GatewayError as error:
        if error.reason is not Reason.SCANNER_UNAVAILABLE:
            raise
        version = policy.scanner.name
    marked = with_status(options.metadata, ScanStatus.CLEAN, version)
    staged = dataclasses.replace(options, metadata=marked, conditions=NO_CONDITIONS)
    return Staged(policy.pending_key(), staged)


async def settle_stored(target: Target, stored: ObjectMeta, conditions: Conditions) -> ObjectMeta:
    """Scan the pending object stored (read back) and settle it: the object
    at target's key once clean (conditions holding there), else
    MALWARE_DETECTED or SCANNER_UNAVAILABLE with the pending object gone."""
    policy = target.scan
    assert policy is not None
    scanner = policy.scanner
    verdict = None
    version = scanner.name
    try:
        verdict = await scan_stored(scanner, target.backend, stored.key)
        version = await scanner.version()
    except GatewayError as error:
        if not stores_unscanned(policy.store_unscanned, error):
            await remove_quietly(target.backend, stored.key)
            raise
        verdict = None
    except BaseException:
        await asyncio.shield(remove_quietly(target.backend, stored.key))
        raise
    options = WriteOptions(
        content_type=stored.content_type, metadata=stored.metadata, conditions=conditions
    )
    return await settle(target, policy, stored, options, verdict, version)


async def settled_upload(
    target: Target, complete: ObjectMeta, conditions: Conditions
) -> ObjectMeta:
    """A retried stream of an upload that committed already: the object it
    became, if it is the one at target's key; its pending object settled
    if a process stopped before doing so; UPLOAD_NOT_FOUND when the scan
    refused it (the first stream was told why)."""
    pending = await current_object(target.backend, complete.key)
    if pending is not None:
        return await settle_stored(target, pending, conditions)
    current = await current_object(target.backend, target.key)
    if current is None or (current.size, current.crc32c) != (complete.size, complete.crc32c):
        raise upload_refused_by_scan(key=target.key)
    return current

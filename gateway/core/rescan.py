"""ScanObjects: the objects under a prefix scanned again, a page at a time
(after a signature update, or those stored scan=skipped while the scanner
was down).

Each object is read and streamed to the bucket's scanner; what follows is
pinned to the generation read. Infected: its bytes go to the quarantine bucket (with the
signature, the scanner and where it came from) and it is deleted from its
key, if it is still that generation. Clean and not marked scan=clean: it is
copied onto itself with its scan status replaced, on the condition that it
is still that generation, so an object overwritten meanwhile is neither
clobbered nor misreported; such an object counts as changed.

The call is an administrative one: the prefix is listed through the door
(LIST), and each object opened there as ADMIN before it is read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.core.buckets import Action, Buckets, Target
from gateway.core.scan_steps import quarantine, scan_object
from gateway.core.scanning import SCAN_STATUS, ScanPolicy, ScanStatus, Verdict, with_status
from gateway.domain.errors import GatewayError, Reason, invalid_argument
from gateway.domain.objects import (
    Conditions,
    CopyRequest,
    ListQuery,
    ObjectMeta,
    WriteOptions,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# What an object that changed under the rescan answers with.
_CHANGED = frozenset({Reason.OBJECT_NOT_FOUND, Reason.PRECONDITION_FAILED})


@dataclass(frozen=True, slots=True)
class ScanFind:
    key: str
    signature: str
    quarantine_bucket: str = ""
    quarantine_key: str = ""


@dataclass(slots=True)
class ScanReport:
    bucket: str
    scanned: int = 0
    clean: int = 0
    marked_clean: int = 0
    changed: int = 0
    infected: list[ScanFind] = field(default_factory=list)
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class ScanRequest:
    bucket: str
    prefix: str
    page_size: int = 0
    page_token: str = ""


async def scan_objects(buckets: Buckets, request: ScanRequest) -> ScanReport:
    """Scan one page of the objects under request.prefix."""
    listing = buckets.open(request.bucket, request.prefix, Action.LIST)
    policy = listing.scan
    if policy is None:
        raise GatewayError(
            Reason.UNSUPPORTED_OPTION,
            f"bucket {listing.bucket!r} does not scan its objects ([buckets.NAME.scan])",
            bucket=listing.bucket,
        )
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise invalid_argument(f"page_size must be 0 to {MAX_PAGE_SIZE}, got {request.page_size}")
    page = await listing.backend.list(
        ListQuery(
            page_size=request.page_size or DEFAULT_PAGE_SIZE,
            prefix=listing.key,
            page_token=request.page_token,
        )
    )
    report = ScanReport(listing.bucket, next_page_token=page.next_page_token)
    version = await policy.scanner.version()
    for listed in page.objects:
        if policy.hides(listed.key):
            continue  # a pending object: its own finalize or the sweep checks it
        target = buckets.open(listing.bucket, listed.key, Action.ADMIN)
        await _rescan(target, policy, listed, version, report)
    return report


async def _rescan(
    target: Target, policy: ScanPolicy, listed: ObjectMeta, version: str, report: ScanReport
) -> None:
    try:
        # What follows is pinned to the generation read (a listing's may be unknown).
        meta, verdict = await scan_object(policy.scanner, target.backend, target.key)
        report.scanned += 1
        if verdict.infected:
            report.infected.append(await _quarantine(target, policy, meta, verdict, version))
        else:
            report.clean += 1
            if meta.metadata.get(SCAN_STATUS) != ScanStatus.CLEAN.value:
                await _mark_clean(target, meta, version)
                report.marked_clean += 1
    except GatewayError as error:
        if error.reason not in _CHANGED:
            raise
        report.changed += 1


async def _quarantine(
    target: Target, policy: ScanPolicy, meta: ObjectMeta, verdict: Verdict, version: str
) -> ScanFind:
    """Move an infected object into quarantine (or delete it, without a
    quarantine bucket)."""
    where = await quarantine(policy, target, target.key, verdict, version)
    pinned = Conditions(if_generation_match=meta.generation)
    await asyncio.shield(target.backend.delete(target.key, pinned))
    return ScanFind(
        target.key,
        verdict.signature or "",
        (policy.quarantine_bucket or "") if where else "",
        where or "",
    )


async def _mark_clean(target: Target, meta: ObjectMeta, version: str) -> None:
    """Replace the object's scan status by scan=clean, if it is still meta's
    generation (a copy onto itself)."""
    pinned = Conditions(if_generation_match=meta.generation)
    options = WriteOptions(
        content_type=meta.content_type,
        metadata=with_status(meta.metadata, ScanStatus.CLEAN, version),
        conditions=pinned,
    )
    request = CopyRequest(
        target.key, target.key, source_conditions=pinned, options=options, replace_metadata=True
    )
    await target.backend.copy(request)

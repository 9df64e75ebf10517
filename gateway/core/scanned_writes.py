"""Writes to a scanning bucket: stored at a pending key while their bytes
stream to the scanner, then promoted to their key on a clean verdict, or
quarantined (or deleted) when infected. Nothing is visible under the key
before its verdict.

    write ──► pending key (hidden) ──► verdict ─ clean ──► promote to key
               bytes teed to the scanner          infected ► quarantine, delete
                                                  none ────► delete (fail)
                                                             or promote marked
                                                             scan=skipped (store)

The pending object is written already marked scan=clean with the scanner's
version: promoted as is (a rename where the driver can), it needs no
rewrite. A verdict that does not come in a bucket whose on_unavailable is
"store" relabels it scan=skipped as it is promoted (a copy). A scanner
unreachable at the start there stores the write straight at its key, marked
skipped. Failing closed (the default), a scanner that cannot be reached,
times out or dies mid-stream fails the write with SCANNER_UNAVAILABLE and
the pending object is removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from gateway.core.buckets import Target
from gateway.core.ingest import Incoming, store
from gateway.core.scan_steps import (
    Relabel,
    check_now,
    closed_on_failure,
    malware_refusal,
    promote,
    quarantine,
    remove,
    remove_quietly,
    stores_unscanned,
)
from gateway.core.scanning import (
    SCAN_SCANNER,
    SCAN_STATUS,
    ScanPolicy,
    ScanSession,
    ScanStatus,
    Verdict,
    with_status,
)
from gateway.domain.errors import GatewayError
from gateway.domain.objects import NO_CONDITIONS, ObjectMeta, WriteOptions


class ScanFeed:
    """A write's scan session, fed beside each chunk's write. Where the
    bucket stores unscanned objects, a scanner failing mid-stream does not
    fail the write: the feed stops, and the verdict is None."""

    def __init__(self, session: ScanSession, store_unscanned: bool) -> None:
        self._session = session
        self._store_unscanned = store_unscanned
        self.failure: GatewayError | None = None

    async def feed(self, data: bytes) -> None:
        if self.failure is not None:
            return
        try:
            await self._session.feed(data)
        except GatewayError as error:
            if not stores_unscanned(self._store_unscanned, error):
                raise
            self.failure = error

    async def verdict(self) -> Verdict | None:
        """The verdict; None when there is none and the bucket stores
        unscanned objects (else SCANNER_UNAVAILABLE)."""
        if self.failure is not None:
            return None
        try:
            return await self._session.verdict()
        except GatewayError as error:
            if not stores_unscanned(self._store_unscanned, error):
                raise
            self.failure = error
            return None

    async def close(self) -> None:
        await self._session.close()


async def store_checked(target: Target, options: WriteOptions, incoming: Incoming) -> ObjectMeta:
    """ingest.store to target's key, scanned first where its bucket scans."""
    policy = target.scan
    backend, key = target.backend, target.key

    async def write(
        at: str, stored_as: WriteOptions, tee: Callable[[bytes], Awaitable[None]] | None = None
    ) -> ObjectMeta:
        """The chunks stored at key `at` as stored_as says (see ingest.store)."""
        return await store(backend, at, stored_as, incoming, tee=tee)

    if policy is None:
        return await write(key, options)
    scanner = policy.scanner
    try:
        version = await scanner.version()
        session = await scanner.open()
    except GatewayError as error:
        if not stores_unscanned(policy.store_unscanned, error):
            raise
        skipped = with_status(options.metadata, ScanStatus.SKIPPED, scanner.name)
        return await write(key, dataclasses.replace(options, metadata=skipped))
    async with closed_on_failure(session):
        await check_now(backend, key, options.conditions)
    feed = ScanFeed(session, policy.store_unscanned)
    pending = policy.pending_key()
    # Marked clean already: promoted as is on a clean verdict (see above).
    marked = with_status(options.metadata, ScanStatus.CLEAN, version)
    pending_options = dataclasses.replace(options, metadata=marked, conditions=NO_CONDITIONS)
    async with closed_on_failure(feed):
        stored = await write(pending, pending_options, tee=feed.feed)
    try:
        verdict = await feed.verdict()
    except BaseException:
        await remove_quietly(backend, pending)
        raise
    return await settle(target, policy, stored, options, verdict, version)


async def settle(
    target: Target,
    policy: ScanPolicy,
    stored: ObjectMeta,
    options: WriteOptions,
    verdict: Verdict | None,
    version: str,
) -> ObjectMeta:
    """What a stored pending object becomes once its verdict is known (None:
    none came, and the bucket stores unscanned objects): the object at
    target's key (options.conditions holding there), or, infected, the
    quarantine's copy and MALWARE_DETECTED. The pending object is gone after."""
    backend, pending = target.backend, stored.key
    try:
        if verdict is not None and verdict.infected:
            raise await _quarantined(target, policy, pending, verdict, version)
        relabel = None
        if verdict is None:
            skipped = with_status(options.metadata, ScanStatus.SKIPPED, policy.scanner.name)
            relabel = Relabel(stored.content_type, skipped)
        elif not _marked_clean(stored, version):
            clean = with_status(options.metadata, ScanStatus.CLEAN, version)
            relabel = Relabel(stored.content_type, clean)
        return await promote(backend, pending, target.key, options.conditions, relabel)
    except BaseException:
        await remove_quietly(backend, pending)
        raise


def _marked_clean(stored: ObjectMeta, version: str) -> bool:
    """Whether the pending object carries the clean status of this scan."""
    marks = stored.metadata
    return marks.get(SCAN_STATUS) == ScanStatus.CLEAN and marks.get(SCAN_SCANNER) == version


async def _quarantined(
    target: Target, policy: ScanPolicy, pending: str, verdict: Verdict, version: str
) -> GatewayError:
    """Keep an infected pending object's bytes in quarantine (where the
    bucket has one), remove it, and tell the caller."""
    where = await quarantine(policy, target, pending, verdict, version)
    await remove(target.backend, pending)
    return malware_refusal(policy, target.key, verdict, where)

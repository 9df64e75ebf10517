"""CDN invalidation after a write or a delete, in one place for every way
in: PurgingBackend wraps a bucket's driver (the composition root wraps the
buckets whose CDN purges), so a Put, a Copy onto a key, a Delete, a
DeleteObjects, a resumable upload's commit, a scan's promotion and a signed
URL's upload all note the key they changed once the driver says it changed.

The keys go to a bounded queue; one task per bucket sends them to the CDN in
batches (as many as its API takes at once), after the write has answered.
A purge that fails is logged (without secrets) and counted, never retried
and never failing the write; a full queue drops the key and counts it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence

from gateway.backends.base import (
    Backend,
    ForwardingUploadWriter,
    ForwardingWriter,
    InnerWriter,
    ObjectWriter,
    ResumableBackend,
    Resumed,
    UploadWriter,
)
from gateway.backends.forwarding import ForwardingBackend, ForwardingMover, ForwardingUploads
from gateway.core.cdn import CdnPurger
from gateway.domain.objects import (
    NO_CONDITIONS,
    Checksums,
    Conditions,
    CopyRequest,
    ObjectMeta,
    WriteOptions,
)

log = logging.getLogger("storagegw")
DEFAULT_QUEUE_SIZE = 10_000


@dataclasses.dataclass(slots=True)
class PurgeCounts:
    """What a bucket's purge queue did, for logs and tests."""

    sent: int = 0  # keys the CDN accepted to purge
    failed: int = 0  # keys whose purge failed
    dropped: int = 0  # keys not queued: the queue was full


class PurgeQueue:
    """The keys of one bucket waiting to be purged at its CDN."""

    def __init__(
        self,
        bucket: str,
        purger: CdnPurger,
        size: int = DEFAULT_QUEUE_SIZE,
        report: Callable[[str, int], None] | None = None,
    ) -> None:
        """report: told each outcome ("sent", "failed", "dropped") and its
        number of keys (the composition root counts them as a metric)."""
        self.bucket = bucket
        self.counts = PurgeCounts()
        self._report = report
        self._purger = purger
        self._queue: asyncio.Queue[str] = asyncio.Queue(size)
        self._task: asyncio.Task[None] | None = None

    def note(self, key: str) -> None:
        """Queue key for a purge; never waits (a full queue drops it)."""
        try:
            self._queue.put_nowait(key)
        except asyncio.QueueFull:
            self.counts.dropped += 1
            self._tell("dropped", 1)
            if self.counts.dropped == 1 or self.counts.dropped % 1000 == 0:
                log.warning(
                    "CDN purge queue of bucket %s is full: %d key(s) not purged so far",
                    self.bucket,
                    self.counts.dropped,
                )
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cdn-purge-{self.bucket}")

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._purger.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            keys = list(dict.fromkeys(batch))  # once each, in order
            try:
                failure = await self._purger.purge(keys)
            except Exception as error:  # a bug: logged by type only, and purging goes on
                failure = f"unexpected {type(error).__name__}"
            if failure is None:
                self.counts.sent += len(keys)
                self._tell("sent", len(keys))
            else:
                self.counts.failed += len(keys)
                self._tell("failed", len(keys))
                log.warning(
                    "CDN purge of %d key(s) of bucket %s failed: %s",
                    len(keys),
                    self.bucket,
                    failure,
                )

    def _tell(self, outcome: str, keys: int) -> None:
        if self._report is not None:
            self._report(outcome, keys)

    async def close(self) -> None:
        """Stop sending (what is still queued is not purged) and close the purger."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._queue.empty():
            log.info(
                "CDN purge of bucket %s: %d key(s) left unpurged at shutdown",
                self.bucket,
                self._queue.qsize(),
            )
        await self._purger.close()


class PurgingBackend(ForwardingBackend):
    """A bucket's driver whose successful writes and deletes queue a purge of
    their key; keys under skipped prefixes (hidden staging keys) never do."""

    def __init__(self, backend: Backend, queue: PurgeQueue, skipped: Sequence[str] = ()) -> None:
        self.purges = queue
        self._skipped = tuple(skipped)
        inner = backend.capabilities
        super().__init__(
            backend,
            dataclasses.replace(
                inner,
                uploads=None if inner.uploads is None else _PurgingUploads(inner.uploads, self),
                mover=None if inner.mover is None else ForwardingMover(inner.mover, self._moved),
            ),
        )

    def changed(self, key: str) -> None:
        if not key.startswith(self._skipped):
            self.purges.note(key)

    async def _moved(self, source_key: str, destination_key: str, meta: ObjectMeta) -> ObjectMeta:
        """The driver's mover changed both keys."""
        self.changed(source_key)
        self.changed(destination_key)
        return meta

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return _PurgingWriter(await super().open_write(key, options), key, self)

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        existed = await super().delete(key, conditions)
        if existed:
            self.changed(key)
        return existed

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        meta = await super().copy(request)
        self.changed(request.destination_key)
        return meta

    async def close(self) -> None:
        await self.purges.close()
        await super().close()


class _PurgingWriter(ForwardingWriter[InnerWriter]):
    """A writer whose successful commit queues a purge of its key."""

    def __init__(self, writer: InnerWriter, key: str, backend: PurgingBackend) -> None:
        super().__init__(writer)
        self._key = key
        self._backend = backend

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        meta = await super().commit(checksums)
        self._backend.changed(self._key)
        return meta


class _PurgingUploadWriter(ForwardingUploadWriter, _PurgingWriter[UploadWriter]):
    """A resumable upload's stream, purging its key as _PurgingWriter does."""


class _PurgingUploads(ForwardingUploads):
    def __init__(self, uploads: ResumableBackend, backend: PurgingBackend) -> None:
        super().__init__(uploads)
        self._backend = backend

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        status, writer = await super().resume_upload(key, handle)
        if writer is None:
            return status, None
        return status, _PurgingUploadWriter(writer, key, self._backend)

"""Resumable uploads: StartUpload, QueryUpload, AbortUpload and the Put
streams that continue one.

The state lives with the backend, never only here: the driver keeps the
bytes (S3 parts, a GCS session, a local temp file) and, at each of its
persistence units, a record from the gateway (this module's "state": the
running whole-object CRC32C and SHA-256 as of that size, and what the client
promised about the whole object). Any process holding the upload_id, and the
gateway's secret, can therefore continue where the last stream stopped and
still check the whole object before committing it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gateway.backends.base import Backend, ResumableBackend, UploadWriter
from gateway.core.buckets import Action, Buckets
from gateway.core.ingest import OFFLOAD_THRESHOLD, Expected, release_budget, verify
from gateway.core.resumable_hash import ResumableChecksums
from gateway.core.stream_limits import current_budget
from gateway.core.upload_budget import UnfinishedBudget
from gateway.core.upload_ids import UploadIds, UploadRef
from gateway.domain.errors import (
    GatewayError,
    Reason,
    object_too_large,
    size_mismatch,
    unsupported,
    upload_aborted,
    upload_busy,
    upload_not_found,
)
from gateway.domain.objects import Checksums, ObjectMeta, UploadStatus
from gateway.rpc.put_stream import PutLimits, Stream, expected_of, options_of
from storagegw.v1 import storage_pb2 as pb

STATE_VERSION = 1


@dataclass(slots=True)
class UploadState:
    """The gateway's record of an upload as of sums.size bytes."""

    sums: ResumableChecksums
    expected: Expected

    def encode(self) -> bytes:
        sha = self.expected.sha256
        doc = {
            "v": STATE_VERSION,
            "sums": self.sums.save(),
            "expected": {
                "size": self.expected.size,
                "crc32c": self.expected.crc32c,
                "sha256": None if sha is None else base64.b64encode(sha).decode("ascii"),
            },
        }
        return json.dumps(doc, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> UploadState:
        try:
            doc = json.loads(data)
            if doc["v"] != STATE_VERSION:
                raise ValueError(f"state version {doc['v']!r}")
            promised = doc["expected"]
            sha = promised["sha256"]
            return cls(
                ResumableChecksums.load(doc["sums"]),
                Expected(
                    size=promised["size"],
                    crc32c=promised["crc32c"],
                    sha256=None if sha is None else base64.b64decode(sha),
                ),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise GatewayError(
                Reason.INTERNAL, f"the upload's gateway state is not readable: {error}"
            ) from None


@dataclass(frozen=True, slots=True)
class Started:
    upload_id: str
    ref: UploadRef


@dataclass(frozen=True, slots=True)
class Segment:
    """What a Put stream on an upload ended with."""

    bucket: str
    persisted_size: int
    meta: ObjectMeta | None  # set once the upload is complete


def invalid_write_offset(offset: int, persisted: int) -> GatewayError:
    return GatewayError(
        Reason.INVALID_WRITE_OFFSET,
        f"write_offset {offset} is past the {persisted} bytes persisted; "
        f"continue from {persisted} (QueryUpload tells the persisted size)",
        write_offset=offset,
        persisted_size=persisted,
    )


Snapshot = tuple[int, bytes]  # (size, the encoded state as of that size)


def _hash(state: UploadState, data: bytes, unit: int) -> list[Snapshot]:
    """Hash data, splitting it at multiples of unit; the state at each."""
    sums = state.sums
    snapshots: list[Snapshot] = []
    position = 0
    while position < len(data):
        take = min(unit - sums.size % unit, len(data) - position)
        sums.update(data if take == len(data) else data[position : position + take])
        position += take
        if sums.size % unit == 0:
            snapshots.append((sums.size, state.encode()))
    return snapshots


async def _hash_off_loop(state: UploadState, data: bytes, unit: int) -> list[Snapshot]:
    if len(data) < OFFLOAD_THRESHOLD:
        return _hash(state, data, unit)
    return await asyncio.to_thread(_hash, state, data, unit)


class _StreamLock(asyncio.Lock):
    """A lock that knows how many calls hold or await it, and whether its
    holder is only winding down a broken stream (worth waiting for) rather
    than still streaming (another stream is then UPLOAD_BUSY).

    An AbortUpload wins over the stream holding it: it sets `aborted` and
    cancels `receiving` (the holder's reading of its messages), so that the
    holder winds down at once instead of when gRPC notices its client left,
    then takes the lock itself."""

    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.winding_down = False
        self.aborted = False
        self.receiving: asyncio.Future[None] | None = None


class Uploads:
    """The resumable-upload RPCs over the gateway's buckets."""

    def __init__(
        self,
        buckets: Buckets,
        ids: UploadIds,
        limits: PutLimits,
        budget: UnfinishedBudget | None = None,
    ) -> None:
        self._buckets = buckets
        self._ids = ids
        self._limits = limits
        self._budget = budget or UnfinishedBudget({})
        # Per upload handle: the stream writing it through this replica.
        self._streams: dict[str, _StreamLock] = {}

    async def start(self, spec: pb.PutSpec) -> Started:
        target = self._buckets.open(spec.bucket, spec.key, Action.WRITE)
        bucket, backend, key = target.bucket, target.backend, target.key
        options = options_of(spec)
        expected = expected_of(spec.expected_checksums, "expected_checksums")
        expected.size = options.size_hint
        limit = self._limits.max_object_size
        if expected.size is not None and limit is not None and expected.size > limit:
            raise object_too_large(limit, expected.size)
        uploads = backend.capabilities.uploads
        if uploads is None:
            raise unsupported("resumable uploads", backend.kind)
        await self._budget.check_start(bucket, backend, expected.size)
        state = UploadState(ResumableChecksums(), expected)
        handle = await uploads.start_upload(key, options, state.encode())
        upload_id, ref = self._ids.issue(backend.kind, bucket, key, handle)
        return Started(upload_id, ref)

    def _open(self, upload_id: str) -> tuple[UploadRef, Backend, ResumableBackend]:
        ref = self._ids.open(upload_id)
        backend = self._buckets.open(ref.bucket, ref.key, Action.WRITE).backend
        uploads = backend.capabilities.uploads
        if backend.kind != ref.backend or uploads is None:
            # The bucket was reconfigured onto another backend since.
            raise upload_not_found(ref.key)
        return ref, backend, uploads

    async def query(self, upload_id: str) -> tuple[UploadRef, UploadStatus]:
        ref, _, uploads = self._open(upload_id)
        return ref, await uploads.query_upload(ref.key, ref.handle)

    async def abort(self, upload_id: str) -> bool:
        ref, _, uploads = self._open(upload_id)
        lock = self._streams.get(ref.handle)
        if lock is None:
            return await uploads.abort_upload(ref.key, ref.handle)
        # A stream of this replica writes the upload: end it (unless it is
        # committing already), wait for it to wind down, then discard.
        lock.users += 1
        lock.aborted = True
        if lock.receiving is not None:
            lock.receiving.cancel()
        try:
            await lock.acquire()
        except BaseException:
            self._done_with(ref.handle, lock, locked=False)
            raise
        try:
            return await uploads.abort_upload(ref.key, ref.handle)
        except BaseException:
            lock.aborted = False  # the upload is still there: streams may go on
            raise
        finally:
            self._done_with(ref.handle, lock)

    async def put(self, first: pb.PutRequest, messages: AsyncIterator[pb.PutRequest]) -> Segment:
        """Continue the upload first.upload_id with the rest of the stream."""
        ref, backend, uploads = self._open(first.upload_id)
        # A retry usually reaches this replica while the broken stream before
        # it is still being wound down (parts in flight, the last record being
        # written): it waits for that instead of racing it.
        lock = self._streams.setdefault(ref.handle, _StreamLock())
        if lock.locked() and not lock.winding_down:
            raise upload_busy(ref.key)
        lock.users += 1
        try:
            await lock.acquire()
        except BaseException:
            self._done_with(ref.handle, lock, locked=False)
            raise
        release = True
        try:
            if lock.aborted:
                raise upload_aborted(ref.key)
            status, writer = await uploads.resume_upload(ref.key, ref.handle)
            if writer is None:
                # Finished already (a retry whose first attempt committed):
                # the object, whatever this stream carries.
                assert status.complete is not None
                return Segment(ref.bucket, status.complete.size, status.complete)
            try:
                state = UploadState.decode(status.state)
                persisted = status.persisted_size
                if state.sums.size != persisted:
                    raise GatewayError(
                        Reason.INTERNAL,
                        f"upload record of {ref.key!r} is at {state.sums.size} bytes, "
                        f"its backend at {persisted}",
                    )
                if first.write_offset < 0 or first.write_offset > persisted:
                    raise invalid_write_offset(first.write_offset, persisted)
                charge = None
                if await self._budget.stream_started(ref.bucket, backend):
                    charge = functools.partial(self._budget.charge, ref.bucket)
                # No await from this check until `receiving` is set: an abort
                # either is seen here or finds the task to cancel.
                if lock.aborted:
                    raise upload_aborted(ref.key)
                stream = Stream(first, messages, start=first.write_offset, require_finish=False)
                lock.receiving = asyncio.ensure_future(
                    self._receive(stream, writer, state, persisted, charge, lock)
                )
                try:
                    await lock.receiving
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if lock.aborted and task is not None and not task.cancelling():
                        raise upload_aborted(ref.key) from None
                    raise
                finally:
                    lock.receiving = None
                meta = await self._finish(stream, writer, state)
            except BaseException:
                # Whatever went wrong (a broken stream, a bad chunk, a failed
                # check), what was persisted stays valid and resumable. The
                # lock is held until the writer is wound down, even when this
                # call is cancelled first.
                lock.winding_down = True
                winding_down = asyncio.ensure_future(writer.suspend())
                winding_down.add_done_callback(lambda _: self._done_with(ref.handle, lock))
                release = False
                await asyncio.shield(winding_down)
                raise
            if meta is None:
                await writer.suspend()
                return Segment(ref.bucket, await self._persisted(uploads, ref), None)
            return Segment(ref.bucket, meta.size, meta)
        finally:
            if release:
                self._done_with(ref.handle, lock)

    def _done_with(self, handle: str, lock: _StreamLock, locked: bool = True) -> None:
        if locked:
            lock.winding_down = False
            lock.release()
        lock.users -= 1
        if lock.users == 0:
            del self._streams[handle]

    @staticmethod
    async def _persisted(backend: ResumableBackend, ref: UploadRef) -> int:
        return (await backend.query_upload(ref.key, ref.handle)).persisted_size

    async def _receive(
        self,
        stream: Stream,
        writer: UploadWriter,
        state: UploadState,
        persisted: int,
        charge: Callable[[int], None] | None,
        lock: _StreamLock,
    ) -> None:
        """Write and hash the stream's chunks past persisted, checkpointing;
        charge (the bucket's unfinished-upload budget) is told each chunk's
        size before it is written."""
        expected = state.expected
        limit = self._limits.max_object_size
        if expected.size is not None:
            limit = expected.size
        unit = writer.checkpoint_bytes
        position = stream.received
        in_flight: asyncio.Future[Any] | None = None
        budget = current_budget()
        try:
            async for data in stream.chunks():
                if lock.aborted:
                    # The abort's cancel is the fast path; this check makes
                    # sure a cancel lost in a read that just completed cannot
                    # let the stream write on.
                    raise asyncio.CancelledError
                start, position = position, position + len(data)
                if position <= persisted or not data:
                    continue  # already persisted: skipped
                if start < persisted:
                    data = data[persisted - start :]
                if limit is not None and position > limit:
                    if expected.size is not None:
                        raise size_mismatch(expected.size, position)
                    raise object_too_large(limit, position)
                if charge is not None:
                    charge(len(data))
                if in_flight is not None:
                    await self._settle(in_flight, writer)
                # The gateway's budget of chunks in flight, as for a plain Put.
                await budget.acquire(len(data))
                in_flight = asyncio.gather(_hash_off_loop(state, data, unit), writer.write(data))
                in_flight.add_done_callback(functools.partial(release_budget, budget, len(data)))
                del data  # held by the write until it is done, not while the client is quiet
            if in_flight is not None:
                await self._settle(in_flight, writer)
                in_flight = None
        finally:
            if in_flight is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(in_flight)

    @staticmethod
    async def _finish(
        stream: Stream, writer: UploadWriter, state: UploadState
    ) -> ObjectMeta | None:
        """Commit the upload if the stream finished it (after the checks)."""
        sums, expected = state.sums, state.expected
        if not stream.finished:
            return None
        for promise in (expected, stream.late):
            verify(promise, sums)
        return await writer.commit(Checksums(sums.crc32c, sums.sha256, sums.size))

    @staticmethod
    async def _settle(in_flight: asyncio.Future[Any], writer: UploadWriter) -> None:
        snapshots, _ = await in_flight
        for size, snapshot in snapshots:
            await writer.checkpoint(size, snapshot)

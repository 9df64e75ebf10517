"""Resumable uploads: StartUpload, QueryUpload, AbortUpload and the Put
streams that continue one.

The state lives with the backend, never only here: the driver keeps the
bytes (S3 parts, a GCS session, a local temp file) and, at each of its
persistence units, a record from the gateway (gateway.core.upload_state:
the running whole-object CRC32C and SHA-256 (when the upload computes one,
as chosen at StartUpload) as of that size, and what the
client promised about the whole object). Any process holding the upload_id,
and the gateway's secret, can therefore continue where the last stream
stopped and still check the whole object before committing it.

A stream continuing an upload goes through the same ingest pump as a plain
Put (gateway.core.ingest), from its write offset past what is persisted,
hashing into the upload's running checksums and handing the driver the
state at each checkpoint; it commits if the stream says it is finished, and
otherwise suspends the upload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from gateway.backends.base import ResumableBackend, UploadWriter
from gateway.core import calllog
from gateway.core.buckets import Action, Buckets, Target
from gateway.core.ingest import Body, Bounds, Pump, check_declared_size, wants_sha256
from gateway.core.resumable_hash import ResumableChecksums
from gateway.core.scanned_uploads import settle_stored, settled_upload, staged_upload
from gateway.core.upload_budget import UnfinishedBudget
from gateway.core.upload_checks import REFUSALS, bounded, continued_inspectors, upload_inspectors
from gateway.core.upload_ids import UploadIds, UploadRef
from gateway.core.upload_state import Snapshot, UploadState
from gateway.core.upload_streams import StreamLock, StreamLocks
from gateway.core.writes import PutLimits, WriteSpec, checked
from gateway.domain.errors import (
    GatewayError,
    Reason,
    unsupported,
    upload_aborted,
    upload_not_found,
)
from gateway.domain.identity import ANONYMOUS, Principal
from gateway.domain.objects import ObjectMeta, UploadStatus


@dataclass(frozen=True, slots=True)
class Started:
    upload_id: str
    ref: UploadRef


@dataclass(frozen=True, slots=True)
class SegmentWrite:
    """A stream continuing an upload: its body's first byte is at
    write_offset of the object; a body that is finished commits it."""

    upload_id: str
    write_offset: int
    body: Body


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


def _owner(principal: Principal) -> str:
    """Whose upload a call starts, as its id records it ("" when
    authentication is off, as in ids issued before uploads had owners)."""
    return principal.id if principal.authenticated else ""


def _owner_principal(owner: str, caller: Principal) -> Principal:
    """The owner of an upload, as far as its id tells: its name, authenticated
    as the caller is (the groups a token gave it are not recorded)."""
    if not owner:
        return ANONYMOUS
    return Principal(owner, caller.proof)


async def _checkpoint(writer: UploadWriter, snapshots: list[Snapshot]) -> None:
    for size, snapshot in snapshots:
        await writer.checkpoint(size, snapshot)


class Uploads:
    """The resumable-upload operations over the gateway's buckets."""

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
        self._streams = StreamLocks()

    async def start(self, spec: WriteSpec) -> Started:
        target = self._buckets.open(spec.bucket, spec.key, Action.WRITE)
        bucket, backend, key = target.bucket, target.backend, target.key
        options, expected = checked(spec)
        check_declared_size(expected.size, self._limits.max_object_size)
        # The request's part of the bucket's upload policy, before anything starts.
        upload_inspectors(target, options.content_type, options.metadata, expected.size)
        uploads = backend.capabilities.uploads
        if uploads is None:
            raise unsupported(option="resumable uploads", backend=backend.kind)
        await self._budget.check_start(bucket, backend, expected.size)
        # Chosen once for the upload: its record says so to every continuation.
        sha256 = wants_sha256(target.sha256, requested=spec.compute_sha256, expected=expected)
        # The declared type is recorded whatever the bucket's policy: one set
        # while the upload is under way judges its first bytes by it.
        checksums = ResumableChecksums(with_sha256=sha256)
        state = UploadState(checksums, expected, options.content_type)
        staged = await staged_upload(target, options)
        stored_key = key if staged is None else staged.key
        stored_options = options if staged is None else staged.options
        handle = await uploads.start_upload(stored_key, stored_options, state.encode())
        owner = _owner(target.principal)
        upload_id, ref = self._ids.issue(
            backend.kind,
            bucket,
            key,
            handle,
            owner,
            stored_key="" if staged is None else staged.key,
            conditions=options.conditions,
        )
        calllog.current().upload_id = upload_id
        return Started(upload_id, ref)

    def _open(self, upload_id: str) -> tuple[UploadRef, Target, ResumableBackend]:
        calllog.current().upload_id = upload_id
        ref = self._ids.open(upload_id)
        # Someone else's upload: only with ADMIN on its object.
        caller = calllog.current().principal
        mine = ref.owner == _owner(caller)
        action = Action.WRITE if mine else Action.ADMIN
        # Someone else's upload goes on under its owner's upload policy rule
        # (as it started), matched by the owner's id and the [groups] table.
        writer = None if mine else _owner_principal(ref.owner, caller)
        target = self._buckets.open(ref.bucket, ref.key, action, writer=writer)
        uploads = target.backend.capabilities.uploads
        if target.backend.kind != ref.backend or uploads is None:
            # The bucket was reconfigured onto another backend since.
            raise upload_not_found(key=ref.key)
        return ref, target, uploads

    async def query(self, upload_id: str) -> tuple[UploadRef, UploadStatus]:
        ref, target, uploads = self._open(upload_id)
        status = await uploads.query_upload(ref.driver_key, ref.handle)
        if ref.stored_key and status.complete is not None:
            # Complete at its pending key: the object it became, if any.
            complete = await settled_upload(target, status.complete, ref.conditions)
            status = dataclasses.replace(status, complete=complete)
        return ref, status

    async def abort(self, upload_id: str) -> bool:
        ref, _, uploads = self._open(upload_id)
        # A stream of this replica writes the upload: end it (unless it is
        # committing already), wait for it to wind down, then discard.
        lock = await self._streams.for_abort(ref.handle)
        if lock is None:
            return await uploads.abort_upload(ref.driver_key, ref.handle)
        try:
            return await uploads.abort_upload(ref.driver_key, ref.handle)
        except BaseException:
            lock.aborted = False  # the upload is still there: streams may go on
            raise
        finally:
            self._streams.done_with(ref.handle, lock)

    async def put(self, segment: SegmentWrite) -> Segment:
        """Continue the upload segment.upload_id with the segment's body."""
        ref, target, uploads = self._open(segment.upload_id)
        lock = await self._streams.for_stream(ref.handle, ref.key)
        release = True
        try:
            if lock.aborted:
                raise upload_aborted(key=ref.key)
            status, writer = await uploads.resume_upload(ref.driver_key, ref.handle)
            if writer is None:
                # Finished already (a retry whose first attempt committed):
                # the object, whatever this stream carries.
                assert status.complete is not None
                complete = status.complete
                if ref.stored_key:
                    complete = await settled_upload(target, complete, ref.conditions)
                return Segment(ref.bucket, complete.size, complete)
            try:
                meta = await self._write(ref, target, segment, status, writer, lock)
            except BaseException as error:
                # Whatever went wrong (a broken stream, a bad chunk, a failed
                # check), what was persisted stays valid and resumable; but an
                # upload whose content the bucket refuses is discarded. The
                # lock is held until the writer is wound down, even when this
                # call is cancelled first.
                refused = isinstance(error, GatewayError) and error.reason in REFUSALS
                winding_down = asyncio.ensure_future(
                    writer.abort() if refused else writer.suspend()
                )
                self._streams.release_after(ref.handle, lock, winding_down)
                release = False
                await asyncio.shield(winding_down)
                raise
            if meta is None:
                await writer.suspend()
                return Segment(ref.bucket, await self._persisted(uploads, ref), None)
            if ref.stored_key:
                # Committed at its pending key: scanned, then promoted.
                meta = await settle_stored(target, meta, ref.conditions)
            return Segment(ref.bucket, meta.size, meta)
        finally:
            if release:
                self._streams.done_with(ref.handle, lock)

    async def _write(
        self,
        ref: UploadRef,
        target: Target,
        segment: SegmentWrite,
        status: UploadStatus,
        writer: UploadWriter,
        lock: StreamLock,
    ) -> ObjectMeta | None:
        """Pump the segment's body into the upload; the object if the body
        finished it (and it checked out), else None."""
        state = UploadState.decode(status.state)
        persisted = status.persisted_size
        if state.sums.size != persisted:
            raise GatewayError(
                Reason.INTERNAL,
                f"upload record of {ref.key!r} is at {state.sums.size} bytes, "
                f"its backend at {persisted}",
            )
        if segment.write_offset < 0 or segment.write_offset > persisted:
            raise invalid_write_offset(segment.write_offset, persisted)
        # Its first bytes are sniffed by the stream that sends them: held back
        # until SNIFF_WINDOW of them (or the whole object) have come, so a
        # stream that stops short of that persists none (Pump.run).
        inspectors = continued_inspectors(target, state.content_type, sniff=persisted == 0)
        charge: Callable[[int], None] | None = None
        if await self._budget.stream_started(ref.bucket, target.backend):
            charge = functools.partial(self._budget.charge, ref.bucket)
        # No await from this check until `receiving` is set: an abort
        # either is seen here or finds the task to cancel.
        if lock.aborted:
            raise upload_aborted(key=ref.key)
        pump = Pump(
            state.sums,
            writer.write,
            functools.partial(state.hash, writer.checkpoint_bytes),
            # Checked at StartUpload against the gateway's limit.
            Bounds(state.expected.size, bounded(self._limits.max_object_size, inspectors)),
            settle=functools.partial(_checkpoint, writer),
            charge=charge,
            interrupted=lambda: lock.aborted,
            inspectors=inspectors,
        )
        body = segment.body
        lock.receiving = asyncio.ensure_future(
            self._receive(pump, body, segment.write_offset, persisted)
        )
        try:
            await lock.receiving
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if lock.aborted and task is not None and not task.cancelling():
                raise upload_aborted(key=ref.key) from None
            raise
        finally:
            lock.receiving = None
        if not body.finished:
            return None
        return await writer.commit(await pump.accepted(state.expected, body.late))

    @staticmethod
    async def _receive(pump: Pump[list[Snapshot]], body: Body, start: int, persisted: int) -> None:
        """Run the pump over the body from start, skipping what is
        persisted; a chunk in flight is let finish before this returns."""
        try:
            await pump.run(
                body.chunks(),
                start=start,
                skip_to=persisted,
                known_crc32c=lambda: body.chunk_crc32c,
                complete=lambda: body.finished,
            )
        finally:
            await pump.drain()

    @staticmethod
    async def _persisted(backend: ResumableBackend, ref: UploadRef) -> int:
        return (await backend.query_upload(ref.driver_key, ref.handle)).persisted_size

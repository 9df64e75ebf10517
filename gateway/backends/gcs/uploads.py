"""Resumable uploads for the GCS driver: a GCS resumable session per upload,
the driver's UploadStore for the shared engine (shared/resumable).

start_upload opens the session exactly as GcsWriter does (content type,
metadata, storage class, KMS key, preconditions as ifGenerationMatch) and
stores the upload's record (gcs/records.py) as the object
`<prefix>.storagegw/uploads/<handle>`, its session URL among the driver's
fields. The URL is a bearer capability: it is never logged, and lives only
in the bucket.

Chunks are GcsWriter's (the chunk size is the checkpoint unit): one in
flight while the next is filled. Once GCS acknowledged the chunk ending at a
checkpoint, the record is rewritten with that persisted size and the
gateway's state, one record write in flight at a time, beside the chunks.

GCS may hold MORE than the record says (a chunk acknowledged, then the
process died before its record was written), and a session cannot rewind.
So a resume asks GCS for the session's persisted offset P (a PUT with
`Content-Range: bytes */*`, ResumableUpload.recover), reports the record's
size R <= P to the gateway (whose checksums are as of R), and the writer
drops the bytes in [R, P) instead of sending them; the gateway still hashes
them. P < R cannot happen unless something else wrote the record: INTERNAL.
The first resume of a session that never got a byte (the record is marked
"untouched" at start) asks nothing: P is 0. It rewrites the record without
the mark before any byte goes out, so that every later resume asks. An
emulator that completes a session when asked (fake-gcs-server) is then asked
only after a broken stream, and a session it completed early is
UPLOAD_NOT_FOUND for the bytes it no longer takes.

Commit sends the last chunk with x-goog-hash carrying the whole object's
CRC32C (the gateway's, since a resumed session never saw the first bytes),
compares GCS's CRC32C, adds sgw-sha256 (GcsWriter's _verify and
_patch_checksums), then rewrites the record as complete. A stream that stops
early (suspend) waits for its chunk in flight, writes the last record and
leaves the session open; a partial chunk held in memory is lost, as it is
when the process dies. AbortUpload and cleanup cancel the session (DELETE)
and remove the record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

from google.cloud.storage import exceptions as media_exceptions

from gateway.backends.base import ObjectWriter, Resumed
from gateway.backends.gcs.common import (
    GCS_ERRORS,
    GcsContext,
    http_status,
    write_preconditions,
)
from gateway.backends.gcs.feed import ChunkFeed
from gateway.backends.gcs.records import SESSION, Records
from gateway.backends.gcs.writer import GcsWriter
from gateway.backends.shared.checkpoints import Checkpoints
from gateway.backends.shared.remote_writer import shielded
from gateway.backends.shared.resumable import Listed
from gateway.backends.shared.upload_records import (
    UploadRecord,
)
from gateway.domain.errors import GatewayError, Reason, upload_not_found
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

log = logging.getLogger(__name__)

# Set in the record of an upload that never sent a byte to its session: its
# first resume needs no status query (fake-gcs-server, the most used
# emulator, completes a session when asked for its status).
UNTOUCHED = "untouched"


def _gone(error: BaseException) -> bool:
    """GCS no longer knows the session (cancelled, or expired after a week)."""
    return http_status(error) in (404, 410)


class GcsUploadWriter(GcsWriter):
    """One stream of a resumable upload; see the module docstring."""

    def __init__(
        self,
        ctx: GcsContext,
        records: Records,
        handle: str,
        record: UploadRecord,
        upload: Any,
        session_offset: int,
        created: Mapping[str, Any] | None,
        background: set[asyncio.Task[None]],
    ) -> None:
        key = record.key
        super().__init__(
            ctx,
            key,
            record.options,
            write_preconditions(key, record.options.conditions),
            background,
            "",
            "",
        )
        self._records = records
        self._handle = handle
        self._record = record
        self._upload = upload
        self._transport = ctx.client._http
        self._feed = upload._stream
        self._created = created
        self._received = record.persisted_size  # object offset of the next byte written
        self._skip_to = session_offset  # GCS holds the bytes below
        self._acked = session_offset
        self._pending = Checkpoints()  # not yet acknowledged
        self._record_write: asyncio.Future[None] | None = None
        self._final_crc: int | None = None

    @property
    def checkpoint_bytes(self) -> int:
        return self._chunk_size

    @contextlib.contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """GcsWriter's mapping, but a session GCS no longer knows (cancelled
        behind the gateway's back, or expired) is UPLOAD_NOT_FOUND."""
        with super()._errors(op):
            try:
                yield
            except GCS_ERRORS as error:
                if _gone(error):
                    raise upload_not_found(key=self._key) from error
                raise

    async def write(self, data: bytes) -> None:
        self._check_open("write")
        start = self._received
        self._received += len(data)
        if self._received <= self._skip_to:
            return  # GCS has these already (acknowledged after the last record)
        if start < self._skip_to:
            data = data[self._skip_to - start :]
        if self._created is not None:
            # Real GCS completes a session only on its last chunk; an emulator
            # may complete it early (fake-gcs-server does on a status query).
            raise GatewayError(
                Reason.UPLOAD_NOT_FOUND,
                f"the storage completed the GCS upload session of {self._key!r} with "
                f"{self._skip_to} bytes before the upload sent them all, so the upload "
                "cannot be continued; start a new one",
                key=self._key,
            )
        await super().write(data)

    async def _failed(self) -> None:
        await self.suspend()

    async def checkpoint(self, size: int, state: bytes) -> None:
        self._pending.add(size, state)
        await self._persist()

    async def _wait_in_flight(self) -> Any:
        response = await super()._wait_in_flight()
        if self._upload is not None:
            self._acked = max(self._acked, int(self._upload.bytes_uploaded))
        await self._persist()
        return response

    async def _persist(self) -> None:
        """Write the record for the last checkpoint GCS acknowledged, after the
        record write before it (one in flight)."""
        reached = self._pending.reached(self._acked)
        if reached is None:
            return
        size, state = reached
        self._record = self._record.advanced(size, state)
        await self._record_written()
        self._record_write = self._ctx.submit(
            functools.partial(self._records.write_blocking, self._handle, self._record)
        )

    async def _record_written(self) -> None:
        future, self._record_write = self._record_write, None
        if future is not None:
            with self._ctx.errors(self._key, op="upload record write"):
                await future

    def _transmit(self, chunk: bytes) -> Any:
        if len(chunk) < self._chunk_size and self._final_crc is not None:
            # The last request: GCS checks the whole object's CRC32C (the
            # gateway's; a resumed session never saw the first bytes).
            digest = self._final_crc.to_bytes(4, "big")
            self._upload._headers["x-goog-hash"] = "crc32c=" + base64.b64encode(digest).decode()
        return super()._transmit(chunk)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        self._check_open("commit")
        self._final_crc = checksums.crc32c
        try:
            meta = await self._commit(checksums)
        except BaseException:
            if self._created is not None:
                # The session completed with the wrong bytes: that generation goes.
                self._done = True
                self._drop_buffer()
                await shielded(GcsWriter._cleanup(self), self._background)
            else:
                await self.suspend()  # resumable still, from what GCS acknowledged
            raise
        self._done = True
        self._record = dataclasses.replace(self._record, persisted_size=meta.size, complete=meta)
        await shielded(self._write_final_record(), self._background)
        return meta

    async def _write_final_record(self) -> None:
        with contextlib.suppress(GatewayError):
            await self._record_written()  # superseded anyway
        await self._records.write(self._handle, self._record)

    async def suspend(self) -> None:
        await self._end(self._release)

    async def _release(self) -> None:
        """Wait for the chunk in flight, then write the last record."""
        try:
            await self._wait_in_flight()
        except BaseException as error:  # the chunk failed: GCS keeps what it acknowledged
            log.info("GCS upload of %r stopped: %s", self._key, type(error).__name__)
        try:
            await self._persist()
            await self._record_written()
        except GatewayError as error:
            log.warning(
                "the upload record of %r could not be written: %s", self._key, error.message
            )

    async def abort(self) -> None:
        await self.suspend()
        await self._records.cancel_session(self._record)
        await self._records.delete(self._handle)


class GcsUploads:
    """The GCS backend's UploadStore (shared/resumable)."""

    def __init__(
        self,
        context: Callable[[], Awaitable[GcsContext]],
        open_write: Callable[[str, WriteOptions], Awaitable[ObjectWriter]],
        background: set[asyncio.Task[None]],
    ) -> None:
        self._context = context
        self._open_write = open_write
        self._background = background

    async def _records(self) -> tuple[GcsContext, Records]:
        ctx = await self._context()
        return ctx, Records(ctx)

    async def create(self, key: str, options: WriteOptions, state: bytes) -> str:
        writer = await self._open_write(key, options)
        assert isinstance(writer, GcsWriter)
        # GcsWriter's own session start: metadata, content type, storage
        # class, KMS key and preconditions exactly as a plain Put's.
        await writer._initiate()
        url = writer.session_url
        assert url is not None
        _, records = await self._records()
        handle = secrets.token_urlsafe(18)
        record = UploadRecord(key, options, state, driver={SESSION: url, UNTOUCHED: True})
        try:
            await records.write(handle, record)
        except BaseException:
            await shielded(records.cancel_session(record), self._background)
            raise
        return handle

    async def load(self, key: str, handle: str) -> UploadRecord | None:
        _, records = await self._records()
        return await records.read(key, handle)

    async def live(self, handle: str, record: UploadRecord) -> UploadRecord:
        return record

    async def reopen(self, handle: str, record: UploadRecord) -> Resumed:
        ctx, records = await self._records()
        key = record.key
        upload = self._session(ctx, record)
        created: Mapping[str, Any] | None = None
        if record.driver.get(UNTOUCHED) and record.persisted_size == 0:
            # Nothing was ever sent: the session holds 0 bytes, no need to ask.
            # The mark goes before any byte does, so a later resume asks.
            driver = {k: v for k, v in record.driver.items() if k != UNTOUCHED}
            record = dataclasses.replace(record, driver=driver)
            await records.write(handle, record)
            fresh = GcsUploadWriter(ctx, records, handle, record, upload, 0, None, self._background)
            return record.status(), fresh
        try:
            # PUT `Content-Range: bytes */*`: what GCS holds (308 and Range).
            await ctx.run(upload.recover, ctx.client._http)
            offset = int(upload.bytes_uploaded)
        except media_exceptions.InvalidResponse as error:
            status = http_status(error)
            if _gone(error):
                raise upload_not_found(key=key) from error
            if status not in (200, 201):
                with ctx.errors(key, op="resumable upload status"):
                    raise
            # The session completed (the process died before its record said so).
            created = error.response.json()
            offset = int(created.get("size") or 0)
        except GCS_ERRORS as error:
            if _gone(error):
                raise upload_not_found(key=key) from error
            with ctx.errors(key, op="resumable upload status"):
                raise
        if offset < record.persisted_size:
            raise GatewayError(
                Reason.INTERNAL,
                f"the GCS upload session of {key!r} holds {offset} bytes, fewer than the "
                f"{record.persisted_size} its record says were persisted",
                key=key,
            )
        writer = GcsUploadWriter(
            ctx, records, handle, record, upload, offset, created, self._background
        )
        return record.status(), writer

    @staticmethod
    def _session(ctx: GcsContext, record: UploadRecord) -> Any:
        """The record's session as the library's ResumableUpload, its stream a
        ChunkFeed (positioned by recover)."""
        blob = ctx.blob(record.key)
        headers, _, content_type = blob._get_upload_arguments(
            ctx.client, record.options.content_type
        )
        # Imported by name: the package is typed, and mypy would then read
        # all of google.cloud.storage as typed (it is not).
        media = importlib.import_module("google.cloud.storage._media.requests")
        upload = media.ResumableUpload(
            str(record.driver[SESSION]),
            ctx.chunk_size,
            checksum=None,  # commit sends the whole object's CRC32C itself
            headers=headers,
            retry=ctx.retry,
        )
        upload._resumable_url = str(record.driver[SESSION])
        upload._stream = ChunkFeed()
        upload._content_type = content_type
        return upload

    async def discard(self, handle: str, record: UploadRecord) -> bool:
        _, records = await self._records()
        await records.cancel_session(record)
        await records.delete(handle)
        return True

    async def listing(self) -> Sequence[Listed]:
        _, records = await self._records()
        return [Listed(h, r, r.created_unix) for h, r in await records.all()]

    async def remove(self, entry: Listed) -> bool:
        _, records = await self._records()
        record = entry.record
        assert record is not None  # listing raises on unreadable records
        if record.complete is None:
            await records.cancel_session(record)
        await records.delete(entry.handle)
        return record.complete is None

    async def would_remove(self, entry: Listed) -> bool:
        return entry.unfinished

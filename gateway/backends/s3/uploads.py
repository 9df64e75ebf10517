"""Resumable uploads for the S3 driver: one S3 multipart upload each, plus a
record object beside it.

State. Everything lives in the bucket, so any replica with the same settings
can continue an upload: the multipart upload holds the bytes, and the record
at `<prefix>.storagegw/uploads/<handle>` (upload_records' JSON) holds the key,
the write options, the multipart UploadId, the upload's fixed part size, the
generation stamped in its metadata, the ETags of parts 1..N and the gateway's
state as of N parts. The handle is a random token, never the UploadId itself.

Persisted size = N * part size, where parts 1..N have all completed: parts
upload concurrently (S3Writer's machinery), and a checkpoint is recorded once
every part below it is in; a partial part buffered in memory is not persisted.
Record PUTs run one at a time in the background, coalesced to the latest, so
they never stall the part pipeline. Parts past the persisted size may exist in
S3 (completed after the last record): a continuation simply uploads those
part numbers again, and CompleteMultipartUpload names parts 1..N explicitly.

Commit is S3Writer's (the same conditions, HEAD check, checksum tags), then
the record is rewritten as complete with the object. A failed commit leaves
the multipart upload and its last checkpoint: the upload stays resumable.

Cleanup. abort_stale_uploads judges resumable uploads by the record's
created_unix (not by S3's Initiated date, which emulators get wrong), aborts
their multipart upload and deletes the record; the stale-multipart pass skips
the multipart uploads of younger records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from gateway.backends.base import Resumed
from gateway.backends.s3.common import (
    MAX_PARTS,
    META_GENERATION,
    S3_ERRORS,
    S3Context,
    error_code_of,
    is_not_found,
    new_generation,
)
from gateway.backends.s3.records import Records
from gateway.backends.s3.settings import S3Settings
from gateway.backends.s3.writer import S3Writer, create_multipart_upload, part_size_for
from gateway.backends.shared.checkpoints import Checkpoints, RecordSaver
from gateway.backends.shared.remote_writer import shielded
from gateway.backends.shared.resumable import Listed, Swept
from gateway.backends.shared.upload_records import (
    UploadRecord,
)
from gateway.domain.errors import GatewayError, object_too_large, upload_not_found
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

log = logging.getLogger(__name__)


def _is_no_such_upload(error: BaseException) -> bool:
    return error_code_of(error) == "NoSuchUpload"


@dataclasses.dataclass
class Owned:
    """Multipart uploads that belong to resumable uploads: by UploadId, and
    every upload of the S3 keys whose upload is still starting."""

    upload_ids: set[str] = dataclasses.field(default_factory=set)
    keys: set[str] = dataclasses.field(default_factory=set)


class ResumableS3Writer(S3Writer):
    """A stream's worth of a resumable upload: S3Writer with the multipart
    upload given, a fixed part size, checkpoints, and no abort on failure."""

    def __init__(
        self,
        uploads: S3Uploads,
        ctx: S3Context,
        handle: str,
        record: UploadRecord,
        extra: dict[str, str],
        concurrency: int,
    ) -> None:
        driver = record.driver
        part_size = int(driver["part_size"])
        super().__init__(
            ctx, record.key, record.options, extra, part_size, concurrency, uploads.background
        )
        self._owner = uploads
        self._handle = handle
        self._record = record
        self._fixed = part_size
        self._generation = {META_GENERATION: str(driver["generation"])}
        self._upload_id = str(driver["upload_id"])
        parts = [str(etag) for etag in driver["parts"]]
        self._part_etags = {number: etag for number, etag in enumerate(parts, 1)}
        self._next_part = len(parts) + 1
        self._contiguous = len(parts)  # parts 1..this have all completed
        self.size = record.persisted_size
        self._pending = Checkpoints()  # not yet durable
        self._records = Records(ctx)
        self._saver = RecordSaver(lambda r: self._records.save(handle, r), uploads.background, "S3")

    @property
    def checkpoint_bytes(self) -> int:
        return self._fixed

    def _part_size(self) -> int:
        return self._fixed

    async def write(self, data: bytes) -> None:
        # Unlike S3Writer.write, a failure leaves the multipart upload alone
        # (the gateway then suspends) and a full part goes out at once.
        self._check_open("write")
        if not data:
            return
        self._raise_failure()
        if not isinstance(data, bytes):
            data = bytes(data)
        if self.size + len(data) > MAX_PARTS * self._fixed:
            raise object_too_large(limit=MAX_PARTS * self._fixed, size=self.size + len(data))
        self._buffer.append(data)
        self.size += len(data)
        while self._buffer.size >= self._fixed:
            await self._send(self._buffer.take(self._fixed))

    async def _upload_part(self, number: int, part: bytes) -> None:
        await super()._upload_part(number, part)
        self._advance()

    async def checkpoint(self, size: int, state: bytes) -> None:
        self._pending.add(size, state)
        self._advance()

    def _advance(self) -> None:
        """Record the latest checkpoint whose parts have all completed."""
        while self._contiguous + 1 in self._part_etags:
            self._contiguous += 1
        reached = self._pending.reached(self._contiguous * self._fixed)
        if reached is None:
            return
        size, state = reached
        if size <= self._record.persisted_size:
            return
        parts = [self._part_etags[n] for n in range(1, size // self._fixed + 1)]
        self._record = dataclasses.replace(
            self._record.advanced(size, state), driver={**self._record.driver, "parts": parts}
        )
        self._saver.submit(self._record)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        self._check_open("commit")
        try:
            if self.size == 0:
                await self._send(b"")  # S3 completes no upload without a part
            meta = await self._commit(checksums)
        except BaseException:
            await self.suspend()
            raise
        self._done = True
        await shielded(self._finish(meta), self._background)
        return meta

    async def _finish(self, meta: ObjectMeta) -> None:
        await self._saver.flush()  # no checkpoint may land after this
        record = dataclasses.replace(
            self._record,
            persisted_size=meta.size,
            complete=meta,
            driver={**self._record.driver, "parts": []},
        )
        try:
            await self._records.save(self._handle, record)
        except GatewayError as error:
            log.warning(
                "S3 object %r was committed but its upload record could not say so: %s",
                self._key,
                error.message,
            )

    async def suspend(self) -> None:
        await self._end(self._settle)

    async def _settle(self) -> None:
        while self._uploads:
            await asyncio.wait(set(self._uploads))
        self._advance()
        await self._saver.flush()

    async def abort(self) -> None:
        self._done = True
        self._drop_buffer()
        for task in set(self._uploads):
            task.cancel()
        await shielded(self._discard(), self._background)

    async def _discard(self) -> None:
        if self._uploads:
            await asyncio.wait(set(self._uploads))
        await self._saver.flush()
        await self._owner.discard(self._handle, self._record)


class S3Uploads:
    """The S3 backend's UploadStore (shared/resumable)."""

    def __init__(
        self,
        context: Callable[[], Awaitable[S3Context]],
        settings: S3Settings,
        storage_args: Callable[[WriteOptions], dict[str, str]],
        background: set[asyncio.Task[None]],
    ) -> None:
        self._context = context
        self._settings = settings
        self._storage_args = storage_args
        self.background = background

    async def _abort_multipart(self, ctx: S3Context, key: str, upload_id: str) -> bool:
        """AbortMultipartUpload; False when S3 no longer has it."""
        try:
            await ctx.client.abort_multipart_upload(
                Bucket=ctx.bucket, Key=ctx.s3_key(key), UploadId=upload_id
            )
        except S3_ERRORS as error:
            if _is_no_such_upload(error) or is_not_found(error):
                return False
            with ctx.errors(key, op="AbortMultipartUpload"):
                raise
        return True

    async def _check_live(self, ctx: S3Context, handle: str, record: UploadRecord) -> UploadRecord:
        """record, once S3 confirms its multipart upload still exists (or the
        record completed, when a commit's last step was lost)."""
        upload_id = str(record.driver["upload_id"])
        if not upload_id:
            raise upload_not_found(key=record.key)  # its start failed
        try:
            await ctx.client.list_parts(
                Bucket=ctx.bucket, Key=ctx.s3_key(record.key), UploadId=upload_id, MaxParts=1
            )
        except S3_ERRORS as error:
            if not (_is_no_such_upload(error) or is_not_found(error)):
                with ctx.errors(record.key, op="ListParts"):
                    raise
        else:
            return record
        # Gone: committed by a stream that could not record it, or aborted.
        current = await ctx.head_or_none(record.key)
        if current is None or current.generation != int(record.driver["generation"]):
            raise upload_not_found(key=record.key)
        done = dataclasses.replace(
            record, persisted_size=current.size, complete=current, driver={**record.driver}
        )
        await Records(ctx).save(handle, done)
        return done

    # UploadStore.

    async def create(self, key: str, options: WriteOptions, state: bytes) -> str:
        # The record first, naming no multipart upload yet: the stale-upload
        # cleanup then never sees a multipart upload of ours without its
        # record (see S3Backend.abort_stale_uploads).
        ctx = await self._context()
        records = Records(ctx)
        generation = new_generation()
        handle = secrets.token_urlsafe(18)
        record = UploadRecord(
            key,
            options,
            state,
            driver={
                "upload_id": "",
                "part_size": part_size_for(self._settings.part_size, options.size_hint, 1),
                "generation": generation[META_GENERATION],
                "parts": [],
            },
        )
        await records.save(handle, record)
        upload_id = ""
        try:
            upload_id = await create_multipart_upload(
                ctx, key, options, self._storage_args(options), generation
            )
            record = dataclasses.replace(record, driver={**record.driver, "upload_id": upload_id})
            await records.save(handle, record)
        except BaseException:
            await shielded(self._undo_start(ctx, key, handle, upload_id), self.background)
            raise
        return handle

    async def _undo_start(self, ctx: S3Context, key: str, handle: str, upload_id: str) -> None:
        try:
            if upload_id:
                await self._abort_multipart(ctx, key, upload_id)
            await Records(ctx).delete(handle)
        except GatewayError as error:
            log.warning("could not undo the start of an upload of %r: %s", key, error.message)

    async def load(self, key: str, handle: str) -> UploadRecord | None:
        return await Records(await self._context()).read(handle, key)

    async def live(self, handle: str, record: UploadRecord) -> UploadRecord:
        return await self._check_live(await self._context(), handle, record)

    async def reopen(self, handle: str, record: UploadRecord) -> Resumed:
        ctx = await self._context()
        record = await self._check_live(ctx, handle, record)
        if record.complete is not None:
            return record.status(), None
        writer = ResumableS3Writer(
            self,
            ctx,
            handle,
            record,
            self._storage_args(record.options),
            self._settings.concurrency,
        )
        return record.status(), writer

    async def discard(self, handle: str, record: UploadRecord) -> bool:
        ctx = await self._context()
        existed = await self._abort_multipart(ctx, record.key, str(record.driver["upload_id"]))
        await Records(ctx).delete(handle)
        return existed

    # The stale sweep: uploads are judged by their record's created_unix.

    async def listing(self) -> Sequence[Listed]:
        return await Records(await self._context()).listing()

    async def remove(self, entry: Listed) -> bool:
        ctx = await self._context()
        record = entry.record
        assert record is not None  # listing skips unreadable records
        upload_id = _multipart_to_abort(record)
        if upload_id:
            await self._abort_multipart(ctx, record.key, upload_id)
        await Records(ctx).delete(entry.handle)
        return bool(upload_id)

    async def would_remove(self, entry: Listed) -> bool:
        return entry.record is not None and bool(_multipart_to_abort(entry.record))


def _multipart_to_abort(record: UploadRecord) -> str:
    """The multipart upload that removing record's upload aborts: an
    unfinished one's, when it has one; "" otherwise."""
    if record.complete is not None:
        return ""
    return str(record.driver.get("upload_id", ""))


def owned_by(swept: Swept, s3_key: Callable[[str], str]) -> Owned:
    """The multipart uploads that belong to resumable uploads, which the
    stale-multipart pass leaves: every one a record names, and every upload
    of the keys whose upload the sweep kept while it was starting (its
    multipart upload may exist already)."""
    owned = Owned()
    for entry in [*swept.removed, *swept.kept]:
        assert entry.record is not None
        owned.upload_ids.add(str(entry.record.driver.get("upload_id", "")))
    for entry in swept.kept:
        assert entry.record is not None
        if not entry.record.driver.get("upload_id") and entry.record.complete is None:
            owned.keys.add(s3_key(entry.record.key))
    return owned

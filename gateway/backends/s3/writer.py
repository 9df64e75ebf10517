"""The S3 driver's reader and writer.

Writer. Bytes are buffered up to the part size. A write whose total is at
most one part is stored at commit with ONE PutObject, the gateway's checksums
in its metadata (sgw-crc32c, sgw-sha256). Past one part, a multipart upload
starts and parts are uploaded concurrently while the stream keeps arriving:
at most `concurrency` part uploads are in flight, each holding its part, plus
the part being filled, so write() waits while the window is full. Commit
uploads the tail and completes the upload. Any failure, abort() or
cancellation aborts the multipart upload (shielded from cancellation), so no
upload is left behind; what cannot be aborted (the process dies) is removed
later by S3Backend.abort_stale_uploads or a bucket lifecycle rule.

A multipart upload's metadata is fixed when it starts, before the checksums
are known, so a multipart object gets them as object tags right after
CompleteMultipartUpload (sgw-crc32c, sgw-sha256 and sgw-etag, the ETag they
belong to; readers ignore tags naming another ETag). That needs
s3:PutObjectTagging/GetObjectTagging; if tagging fails the object stays, just
without stored checksums.

Conditions. Create-only (if_none_match "*" or if_generation_match 0) and
if_match are sent to S3 as If-None-Match/If-Match on PutObject and
CompleteMultipartUpload, which S3 evaluates atomically. Generation conditions
and if_none_match with an ETag cannot be expressed to S3: they are checked
against a HEAD just before the write, which is NOT atomic (another writer can
slip in between). Every condition on a multipart upload is checked by that
HEAD too (and still sent to S3), because S3-compatible stores that predate
conditional writes (Ceph RGW 16, for one) ignore If-None-Match and If-Match on
CompleteMultipartUpload: there, create-only of a multipart object is not
atomic.

Reader. One ranged GetObject; the body is streamed with iter_chunks and
re-cut into chunks of exactly chunk_size bytes (the last one shorter).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from gateway.backends.base import RangeReader
from gateway.backends.s3.common import (
    KIND,
    MAX_PART_SIZE,
    META_CRC32C,
    META_GENERATION,
    META_SHA256,
    MIB,
    S3_ERRORS,
    TAG_ETAG,
    S3Context,
    checksum_entries,
    new_generation,
    unquote_etag,
)
from gateway.backends.shared.remote_writer import RemoteWriter, missing_fails_condition
from gateway.domain.conditions import check as check_conditions
from gateway.domain.errors import backend_unavailable
from gateway.domain.objects import Checksums, Conditions, ObjectMeta, WriteOptions

log = logging.getLogger(__name__)


def write_conditions(conditions: Conditions) -> tuple[dict[str, str], str]:
    """(If-Match/If-None-Match arguments S3 evaluates itself, the name of the
    condition a 412 means)."""
    if conditions.if_none_match == "*":
        return {"IfNoneMatch": "*"}, "if_none_match"
    if conditions.if_generation_match == 0:
        return {"IfNoneMatch": "*"}, "if_generation_match"
    if conditions.if_match:
        # Unquoted: Ceph RGW (16) compares the header with its ETag verbatim
        # and refuses the quoted form; moto and MinIO accept both.
        return {"IfMatch": unquote_etag(conditions.if_match)}, "if_match"
    return {}, ""


def needs_head_check(conditions: Conditions, multipart: bool) -> bool:
    """Whether conditions need a HEAD before writing (see the module doc)."""
    return (
        conditions.if_generation_match not in (None, 0)
        or conditions.if_generation_not_match is not None
        or conditions.if_none_match not in ("", "*")
        or (multipart and conditions.any)
        # Both kinds at once: S3 gets only the create-only one.
        or (bool(conditions.if_match) and "IfNoneMatch" in write_conditions(conditions)[0])
    )


def part_size_for(base: int, size_hint: int | None, part_number: int) -> int:
    """Size of part part_number (1-based). With a size hint, one size that
    fits the object in 9,000 parts; without, the size grows by base every
    1,000 parts so that 10,000 parts hold 55,000 times base."""
    if size_hint is not None and size_hint > base * 9000:
        return min(MAX_PART_SIZE, -(-size_hint // (9000 * MIB)) * MIB)
    return min(MAX_PART_SIZE, base * (1 + (part_number - 1) // 1000))


async def create_multipart_upload(
    ctx: S3Context,
    key: str,
    options: WriteOptions,
    extra: dict[str, str],
    generation: dict[str, str],
) -> str:
    """CreateMultipartUpload with the write's options; its UploadId."""
    with ctx.errors(key, op="CreateMultipartUpload"):
        response = await ctx.client.create_multipart_upload(
            Bucket=ctx.bucket,
            Key=ctx.s3_key(key),
            ContentType=options.content_type,
            Metadata={**options.metadata, **generation},
            **extra,
        )
    return str(response["UploadId"])


class Pieces:
    """Bytes kept as the pieces they arrived in, cut out with a single copy
    (the join; none for a piece taken whole)."""

    def __init__(self) -> None:
        self._pieces: deque[bytes | memoryview] = deque()
        self.size = 0

    def append(self, data: bytes) -> None:
        if data:
            self._pieces.append(data)
            self.size += len(data)

    def take(self, size: int) -> bytes:
        """The first size bytes (at most self.size)."""
        taken: list[bytes | memoryview] = []
        need = min(size, self.size)
        self.size -= need
        while need:
            piece = self._pieces[0]
            if len(piece) <= need:
                taken.append(self._pieces.popleft())
                need -= len(piece)
            else:
                view = memoryview(piece)
                taken.append(view[:need])
                self._pieces[0] = view[need:]
                need = 0
        return b"".join(taken)

    def clear(self) -> None:
        self._pieces.clear()
        self.size = 0


class S3Writer(RemoteWriter):
    """A write in progress; see the module docstring."""

    def __init__(
        self,
        ctx: S3Context,
        key: str,
        options: WriteOptions,
        extra: dict[str, str],
        part_size: int,
        concurrency: int,
        background: set[asyncio.Task[None]],
    ) -> None:
        super().__init__(background)
        self._ctx = ctx
        self._key = key
        self._options = options
        self._extra = extra  # StorageClass, ServerSideEncryption, SSEKMSKeyId
        self._generation = new_generation()
        self._base_part_size = part_size
        self._buffer = Pieces()  # bytes not yet in a part
        self._upload_id: str | None = None
        self._part_etags: dict[int, str] = {}
        self._next_part = 1
        self._window = asyncio.Semaphore(concurrency)
        self._uploads: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    @property
    def upload_id(self) -> str | None:
        return self._upload_id

    def _part_size(self) -> int:
        return part_size_for(self._base_part_size, self._options.size_hint, self._next_part)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def write(self, data: bytes) -> None:
        self._check_open("write")
        if not data:
            return
        try:
            self._raise_failure()
            if not isinstance(data, bytes):
                data = bytes(data)  # the caller may reuse its buffer
            self._buffer.append(data)
            self.size += len(data)
            # Strictly more than one part: a write of exactly one part is a PutObject.
            while self._buffer.size > (size := self._part_size()):
                await self._send(self._buffer.take(size))
        except BaseException:
            await self.abort()
            raise

    async def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            await self._create_upload()
        await self._window.acquire()
        try:
            self._raise_failure()
        except BaseException:
            self._window.release()
            raise
        number = self._next_part
        self._next_part += 1
        task = asyncio.create_task(self._upload_part(number, part))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    async def _create_upload(self) -> None:
        self._upload_id = await create_multipart_upload(
            self._ctx, self._key, self._options, self._extra, self._generation
        )

    async def _upload_part(self, number: int, part: bytes) -> None:
        ctx = self._ctx
        try:
            with ctx.errors(self._key, op="UploadPart"):
                response = await ctx.client.upload_part(
                    Bucket=ctx.bucket,
                    Key=ctx.s3_key(self._key),
                    UploadId=self._upload_id,
                    PartNumber=number,
                    Body=part,
                )
            self._part_etags[number] = str(response["ETag"])
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._failure is None:
                self._failure = error
        finally:
            self._window.release()

    async def _commit(self, checksums: Checksums) -> ObjectMeta:
        ctx, key, options = self._ctx, self._key, self._options
        conditions = options.conditions
        native, condition = write_conditions(conditions)
        multipart = self._upload_id is not None
        if needs_head_check(conditions, multipart):
            before = await ctx.head_or_none(key, tags=False)
            check_conditions(key, conditions, before, read=False)
        sums = checksum_entries(checksums.crc32c, checksums.sha256)
        current: ObjectMeta | None = None  # the object as stored, once read back
        if not multipart:
            body = self._buffer.take(self._buffer.size)
            with self._write_errors(condition, "PutObject"):
                response = await ctx.client.put_object(
                    Bucket=ctx.bucket,
                    Key=ctx.s3_key(key),
                    Body=body,
                    ContentType=options.content_type,
                    Metadata={**options.metadata, **sums, **self._generation},
                    **self._extra,
                    **native,
                )
            etag = unquote_etag(str(response["ETag"]))
        else:
            if self._buffer.size:
                await self._send(self._buffer.take(self._buffer.size))
            while self._uploads:
                await asyncio.wait(set(self._uploads))
            self._raise_failure()
            parts = [
                {"ETag": self._part_etags[n], "PartNumber": n} for n in sorted(self._part_etags)
            ]
            with self._write_errors(condition, "CompleteMultipartUpload"):
                response = await ctx.client.complete_multipart_upload(
                    Bucket=ctx.bucket,
                    Key=ctx.s3_key(key),
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    **native,
                )
            self._upload_id = None  # completed: nothing left to abort
            etag = unquote_etag(str(response.get("ETag") or ""))
            if not etag:
                # Ceph RGW leaves the ETag out of this answer for SSE-KMS
                # objects: read it back.
                current = await ctx.head_or_none(key, tags=False)
                etag = current.etag if current is not None and self._is_ours(current) else ""
            if etag:
                await self._tag(etag, sums)
        if current is None:
            current = await ctx.head_or_none(key, tags=False)
        meta = current
        if meta is None or not self._is_ours(meta):
            # Replaced or deleted since: describe what this write stored.
            now = time.time_ns()
            meta = ObjectMeta(
                key=key,
                size=self.size,
                etag=etag,
                generation=int(self._generation[META_GENERATION]),
                create_time_ns=now,
                update_time_ns=now,
                content_type=options.content_type,
                metadata=dict(options.metadata),
                storage_class=str(self._extra.get("StorageClass") or "STANDARD"),
            )
        return dataclasses.replace(meta, crc32c=checksums.crc32c, sha256=checksums.sha256)

    def _is_ours(self, meta: ObjectMeta) -> bool:
        """Whether meta describes this write (each write stamps its own
        generation), not one that replaced it since."""
        return meta.generation == int(self._generation[META_GENERATION])

    def _write_errors(self, condition: str, op: str) -> Any:
        """ctx.errors, where a missing object under if_match (S3 answers 404)
        is PRECONDITION_FAILED."""
        matched = condition if condition == "if_match" else ""
        return missing_fails_condition(
            self._ctx.errors(self._key, condition, op), self._key, matched
        )

    async def _tag(self, etag: str, sums: dict[str, str]) -> None:
        ctx = self._ctx
        tags = [{"Key": TAG_ETAG, "Value": etag}]
        tags += [{"Key": k, "Value": sums[k]} for k in (META_CRC32C, META_SHA256) if k in sums]
        try:
            await ctx.client.put_object_tagging(
                Bucket=ctx.bucket, Key=ctx.s3_key(self._key), Tagging={"TagSet": tags}
            )
        except S3_ERRORS as error:
            log.warning(
                "S3 object %r was stored but its checksums could not be tagged: %r",
                self._key,
                error,
            )

    def _drop_buffer(self) -> None:
        self._buffer.clear()

    async def _cleanup(self) -> None:
        uploads = set(self._uploads)
        for task in uploads:
            task.cancel()
        if uploads:
            await asyncio.wait(uploads)
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        ctx = self._ctx
        try:
            await ctx.client.abort_multipart_upload(
                Bucket=ctx.bucket, Key=ctx.s3_key(self._key), UploadId=upload_id
            )
        except S3_ERRORS as error:
            log.warning("could not abort S3 multipart upload of %r: %r", self._key, error)


class S3Reader(RangeReader):
    """A range of an object, streamed from one GetObject response."""

    def __init__(
        self, ctx: S3Context, meta: ObjectMeta, body: Any, start: int, end: int, skip: int = 0
    ) -> None:
        super().__init__(meta, start, end)
        self._ctx = ctx
        self._body = body
        self._skip = skip  # leading body bytes before start (a server ignoring Range)
        self._closed = False

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        remaining = self._end - self._start
        if remaining <= 0 or self._body is None:
            return
        skip = self._skip
        buffer = Pieces()
        with self._ctx.errors(self._meta.key, op="GetObject"):
            async for piece in self._body.iter_chunks(chunk_size):
                if self._closed:
                    return
                if skip:
                    dropped = min(skip, len(piece))
                    piece, skip = piece[dropped:], skip - dropped
                truncated = len(piece) > remaining
                piece = piece[:remaining]
                remaining -= len(piece)
                buffer.append(piece)
                while buffer.size >= chunk_size:
                    yield buffer.take(chunk_size)
                if truncated:
                    break  # the rest of the body is not ours (a suffix with a limit)
        if buffer.size:
            yield buffer.take(buffer.size)
        if remaining:
            raise backend_unavailable(
                KIND, f"S3 GetObject: the body of {self._meta.key!r} ended {remaining} bytes early"
            )
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._body is not None:
            self._body.close()
            self._body = None

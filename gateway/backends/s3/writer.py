"""The S3 driver's writer: one PutObject, or a multipart upload whose parts
are sent while the stream keeps arriving.

Bytes are buffered up to the part size. A write whose total is at most one
part is stored at commit with ONE PutObject, the gateway's checksums in its
metadata (sgw-crc32c, sgw-sha256), and described from PutObject's answer
with no read-back where S3 stores the write as sent (s3/written.py). Past
one part, a multipart upload starts and parts are uploaded concurrently
while the stream keeps arriving: at most
`concurrency` part uploads are in flight, each holding its part, plus the
part being filled, so write() waits while the window is full. Commit uploads
the tail and completes the upload. Any failure, abort() or cancellation
aborts the multipart upload (shielded from cancellation), so no upload is
left behind; what cannot be aborted (the process dies) is removed later by
S3Backend.abort_stale_uploads or a bucket lifecycle rule.

A multipart upload's metadata is fixed when it starts, before the checksums
are known, so a multipart object gets them as object tags right after
CompleteMultipartUpload (sgw-crc32c, sgw-sha256 and sgw-etag, the ETag they
belong to; readers ignore tags naming another ETag). That needs
s3:PutObjectTagging/GetObjectTagging; if tagging fails the object stays, just
without stored checksums.

Conditions go to S3 where S3 can evaluate them, else are checked against a
HEAD just before the write: see s3/conditions.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from gateway.backends.s3.common import (
    META_GENERATION,
    S3_ERRORS,
    TAG_ETAG,
    S3Context,
    new_generation,
    unquote_etag,
)
from gateway.backends.s3.conditions import needs_head_check, write_conditions
from gateway.backends.s3.pieces import Pieces
from gateway.backends.s3.settings import MAX_PART_SIZE, MIB
from gateway.backends.s3.written import response_time_ns, stored_as_sent
from gateway.backends.shared.remote_writer import RemoteWriter, missing_fails_condition
from gateway.backends.shared.reserved_metadata import META_CRC32C, META_SHA256, checksum_entries
from gateway.domain.conditions import check as check_conditions
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, Checksums, ObjectMeta, WriteOptions

log = logging.getLogger(__name__)


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
            etag = unquote_etag(str(response.get("ETag") or ""))
            if etag and stored_as_sent(options):
                # Everything a HEAD would say is known: no read-back.
                return self._described(etag, response_time_ns(response), checksums)
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
        if current is None or not self._is_ours(current):
            # Replaced or deleted since: describe what this write stored.
            return self._described(etag, time.time_ns(), checksums)
        return dataclasses.replace(current, crc32c=checksums.crc32c, sha256=checksums.sha256)

    def _described(self, etag: str, time_ns: int, checksums: Checksums) -> ObjectMeta:
        """What this write stored, as a HEAD of it would describe it."""
        options = self._options
        return ObjectMeta(
            key=self._key,
            size=self.size,
            etag=etag,
            generation=int(self._generation[META_GENERATION]),
            create_time_ns=time_ns,
            update_time_ns=time_ns,
            content_type=options.content_type or DEFAULT_CONTENT_TYPE,
            # S3 lower-cases metadata keys.
            metadata={k.lower(): v for k, v in options.metadata.items()},
            crc32c=checksums.crc32c,
            sha256=checksums.sha256,
            storage_class=str(self._extra.get("StorageClass") or "STANDARD"),
        )

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

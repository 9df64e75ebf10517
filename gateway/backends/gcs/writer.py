"""The GCS driver's object writer.

Bytes are buffered up to the chunk size. A write whose total is at
most one chunk is stored at commit by ONE upload request (multipart upload)
carrying content type, metadata and the gateway's checksums. Past one chunk,
a resumable upload session starts and chunks are sent while the stream keeps
arriving: one chunk in flight (a resumable upload takes its chunks in order)
plus the one being filled, so memory stays near twice the chunk size whatever
the object's size. The size is not declared up front; the last chunk, sent at
commit, says it, and only then does the object appear.

A session's metadata is fixed when it starts, before the checksums are
known, so a resumable object gets sgw-crc32c and sgw-sha256 by a metadata
patch right after it completes, pinned to its generation and metageneration.
If the patch fails the object stays, just without the gateway's sha256.

Integrity. GCS computes the CRC32C of what it stored; commit compares it
with the gateway's and, on a mismatch, deletes that generation and fails.

Conditions go to GCS as ifGenerationMatch / ifGenerationNotMatch (see
gcs/common.py, write_preconditions), which GCS evaluates atomically when the
object is created, so a 412 comes from the final request.

Abort (failure, cancellation, abort()) waits for the chunk in flight, then
cancels the session (DELETE on its URL), shielded from cancellation; if the
last chunk had already created the object, that generation is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from typing import Any

from google.cloud.storage import exceptions as media_exceptions
from google.cloud.storage.exceptions import DataCorruption

from gateway.backends.gcs.common import (
    GCS_ERRORS,
    GcsContext,
    WritePreconditions,
    http_status,
    is_not_found,
    meta_from,
    resource_of,
)
from gateway.backends.gcs.feed import ChunkFeed
from gateway.backends.shared.remote_writer import RemoteWriter, missing_fails_condition
from gateway.backends.shared.reserved_metadata import checksum_entries
from gateway.domain.errors import (
    GatewayError,
    Reason,
    checksum_mismatch,
)
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

log = logging.getLogger(__name__)


class GcsWriter(RemoteWriter):
    """A write in progress; see the module docstring."""

    def __init__(
        self,
        ctx: GcsContext,
        key: str,
        options: WriteOptions,
        preconditions: WritePreconditions,
        background: set[asyncio.Task[None]],
        storage_class: str,
        kms_key: str,
    ) -> None:
        super().__init__(background)
        self._ctx = ctx
        self._key = key
        self._options = options
        self._preconditions = preconditions
        self._storage_class = storage_class
        self._kms_key = kms_key
        self._chunk_size = ctx.chunk_size
        self._buffer = bytearray()
        self._feed = ChunkFeed()
        self._upload: Any = None  # ResumableUpload, once past one chunk
        self._transport: Any = None
        self._in_flight: asyncio.Future[Any] | None = None
        self._created: Mapping[str, Any] | None = None  # the object, once it exists

    @property
    def session_url(self) -> str | None:
        """The resumable session's URL (a capability: never log it)."""
        return None if self._upload is None else str(self._upload.resumable_url)

    def _new_blob(self, metadata: Mapping[str, str]) -> Any:
        blob = self._ctx.blob(self._key)
        blob.content_type = self._options.content_type
        blob.metadata = dict(metadata)
        if self._storage_class:
            blob.storage_class = self._storage_class
        if self._kms_key:
            blob.kms_key_name = self._kms_key
        return blob

    async def write(self, data: bytes) -> None:
        self._check_open("write")
        if not data:
            return
        try:
            self._buffer += data
            self.size += len(data)
            # Strictly more than one chunk: a write of exactly one chunk is one request.
            while len(self._buffer) > self._chunk_size:
                with memoryview(self._buffer) as view:  # one copy, not two
                    chunk = bytes(view[: self._chunk_size])
                del self._buffer[: self._chunk_size]
                await self._send(chunk)
        except BaseException:
            await self._failed()
            raise

    async def _failed(self) -> None:
        """A write failed: discard the upload (a resumable one keeps it)."""
        await self.abort()

    async def _wait_in_flight(self) -> Any:
        future, self._in_flight = self._in_flight, None
        if future is None:
            return None
        with self._errors("resumable upload"):
            return await future

    async def _send(self, chunk: bytes) -> None:
        await self._wait_in_flight()
        if self._upload is None:
            await self._initiate()
        self._in_flight = self._ctx.submit(functools.partial(self._transmit, chunk))

    async def _initiate(self) -> None:
        ctx = self._ctx
        blob = self._new_blob(self._options.metadata)
        with self._errors("resumable upload start"):
            # The library's own session start (what Blob.open("wb") uses), so
            # URL, headers, preconditions and retries are exactly its own.
            self._upload, self._transport = await ctx.run(
                blob._initiate_resumable_upload,
                ctx.client,
                self._feed,
                self._options.content_type,
                None,  # size unknown: the last chunk says it
                chunk_size=self._chunk_size,
                # The library sends the CRC32C of what it sent with the last
                # chunk (x-goog-hash), so GCS refuses bytes damaged on the way
                # before the object replaces anything; commit also compares
                # GCS's CRC32C with the gateway's end-to-end one.
                checksum="crc32c",
                retry=ctx.retry,
                **self._preconditions.kwargs(),
            )

    def _transmit(self, chunk: bytes) -> Any:
        """Send one chunk (in the pool); the response when it was the last."""
        self._feed.feed(chunk)
        try:
            response = self._upload.transmit_next_chunk(self._transport)
        except media_exceptions.InvalidResponse as error:
            if http_status(error) == 400 and "crc32c" in _text(error.response).lower():
                # GCS checked the x-goog-hash sent with the last chunk and
                # refused: nothing was stored, nothing was replaced.
                raise GatewayError(
                    Reason.CHECKSUM_MISMATCH,
                    f"GCS refused the upload of {self._key!r}: the CRC32C of the bytes it "
                    "received differs from what the gateway sent (damaged on the way); "
                    "nothing was stored",
                    key=self._key,
                ) from error
            raise
        except DataCorruption as error:
            # A store that ignored x-goog-hash kept bytes whose CRC32C differs:
            # _verify reports it, and abort removes exactly that generation.
            self._created = error.response.json()
            return error.response
        if self._upload.finished:
            self._created = response.json()
        return response

    async def _commit(self, checksums: Checksums) -> ObjectMeta:
        ctx = self._ctx
        sums = checksum_entries(checksums.crc32c, checksums.sha256)
        if self._upload is None:
            blob = self._new_blob({**self._options.metadata, **sums})
            body = bytes(self._buffer)
            self._buffer = bytearray()
            with self._errors("upload"):
                await ctx.run(
                    blob.upload_from_string,
                    body,
                    content_type=self._options.content_type,
                    checksum=None,
                    retry=ctx.retry,
                    **self._preconditions.kwargs(),
                )
            self._created = resource_of(blob)
            resource = await self._verify(checksums)
            return meta_from(self._key, resource)
        await self._wait_in_flight()
        last = bytes(self._buffer)
        self._buffer = bytearray()
        # A last chunk of exactly chunk_size bytes is sent as an ordinary one;
        # an empty one then completes the upload.
        while self._created is None:
            self._in_flight = ctx.submit(functools.partial(self._transmit, last))
            await self._wait_in_flight()
            last = b""
        resource = await self._verify(checksums)
        resource = await self._patch_checksums(resource, sums)
        return meta_from(self._key, resource)

    async def _verify(self, checksums: Checksums) -> Mapping[str, Any]:
        """The created object, once GCS's CRC32C matches the gateway's."""
        resource = self._created
        assert resource is not None
        stored = meta_from(self._key, resource)
        if stored.crc32c != checksums.crc32c or stored.size != checksums.size:
            actual = "none" if stored.crc32c is None else f"{stored.crc32c:08x}"
            raise checksum_mismatch(
                checksum="crc32c of the object GCS stored",
                expected=f"{checksums.crc32c:08x}",
                actual=actual,
            )
        return resource

    async def _patch_checksums(
        self, resource: Mapping[str, Any], sums: Mapping[str, str]
    ) -> Mapping[str, Any]:
        ctx = self._ctx
        blob = ctx.blob(self._key)
        blob.metadata = {**(resource.get("metadata") or {}), **sums}
        try:
            await ctx.run(
                blob.patch,
                if_generation_match=int(resource["generation"]),
                if_metageneration_match=int(resource.get("metageneration") or 1),
                retry=ctx.retry,
            )
        except GCS_ERRORS as error:
            log.warning(
                "GCS object %r was stored but its checksums could not be added: %s",
                self._key,
                type(error).__name__,
            )
            return resource
        patched = resource_of(blob)
        if str(patched.get("generation")) != str(resource["generation"]):
            return resource
        # Fields a patch response leaves out (the emulator drops timeCreated)
        # are the upload's.
        return {**resource, **{k: v for k, v in patched.items() if v not in (None, "")}}

    def _errors(self, op: str) -> Any:
        """ctx.errors for a write: a missing object under a match condition
        is a failed precondition."""
        condition = self._preconditions.condition
        return missing_fails_condition(
            self._ctx.errors(self._key, condition, op), self._key, condition
        )

    def _drop_buffer(self) -> None:
        self._buffer = bytearray()

    async def _cleanup(self) -> None:
        future, self._in_flight = self._in_flight, None
        if future is not None:
            with contextlib.suppress(BaseException):
                await future
        ctx = self._ctx
        created = self._created
        if created is not None:
            # The object exists (the last request completed, then commit
            # failed or was cancelled): remove exactly that generation.
            try:
                await ctx.run(
                    ctx.blob(self._key).delete,
                    if_generation_match=int(created["generation"]),
                    retry=ctx.retry,
                )
            except GCS_ERRORS as error:
                if not is_not_found(error) and getattr(error, "code", 0) != 412:
                    log.warning(
                        "could not remove GCS object %r after a failed write: %s",
                        self._key,
                        type(error).__name__,
                    )
            return
        upload, self._upload = self._upload, None
        if upload is None:
            return
        try:
            # Cancelling a session answers 499 by design.
            await ctx.run(self._transport.delete, upload.resumable_url)
        except GCS_ERRORS as error:
            log.warning(
                "could not cancel the GCS upload session of %r: %s", self._key, type(error).__name__
            )


def _text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # a response without a readable body
        return ""

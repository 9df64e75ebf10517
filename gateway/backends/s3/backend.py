"""A driver storing objects in an S3 bucket (AWS or S3-compatible), kind "s3".

One long-lived aioboto3 client per backend, created on first use and closed
by close(). Credentials are the settings' keys when given, else botocore's
default chain (AWS_* environment variables, profiles, instance roles).

Keys. Object key in S3 = settings.prefix + key; listings strip the prefix.

Metadata. User metadata is stored as S3 user metadata (x-amz-meta-*). S3
lower-cases metadata keys, so keys come back lower-cased. The gateway's
checksums are reserved entries sgw-crc32c (8 hex) and sgw-sha256 (64 hex),
stripped from the metadata returned; multipart objects carry them as tags
instead (see s3/writer.py). ObjectMeta.etag is S3's ETag without quotes.

Generation. S3 has no portable generation, so every write (put, multipart,
copy) stores its own in the metadata entry sgw-generation: microseconds since
the epoch when the write began, so it changes on every write, even of the
same bytes. Listings carry no metadata, so their entries say 0 (unknown);
for objects written by other tools, s3/common.generation_of derives one from
LastModified (1 s) and the ETag. ETag conditions map to S3's If-Match/If-None-Match and
are atomic; generation conditions are evaluated by the driver against a HEAD,
which is NOT atomic.

Delete. DeleteObject does not say whether the key existed, and the contract
returns that, so delete is HEAD then DELETE (2 round trips). With conditions,
the DELETE carries If-Match with the HEADed ETag, so it only removes the
object the conditions were checked against (stores without conditional
deletes ignore it: the HEAD check then stands alone).

List. ListObjectsV2; the page token wraps S3's continuation token.
ListObjectsV2 does not return content types or metadata: listed objects have
the default content type, no metadata and no checksums (HEAD has them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

from gateway.backends.base import Capabilities, ObjectReader, ObjectWriter
from gateway.backends.observer import StoreObserver
from gateway.backends.s3 import reader, signing, sweep
from gateway.backends.s3.common import (
    KIND,
    S3_ERRORS,
    S3Context,
    error_code_of,
    is_not_found,
    new_generation,
    quote_etag,
    unquote_etag,
)
from gateway.backends.s3.conditions import write_conditions
from gateway.backends.s3.copy import multipart_copy
from gateway.backends.s3.lifecycle import S3Lifecycle
from gateway.backends.s3.listing import list_page
from gateway.backends.s3.session import open_context
from gateway.backends.s3.settings import GIB, S3Settings
from gateway.backends.s3.uploads import S3Uploads
from gateway.backends.s3.writer import S3Writer
from gateway.backends.shared import presign
from gateway.backends.shared.remote_backend import RemoteBackend
from gateway.backends.shared.reserved_metadata import checksum_entries
from gateway.backends.shared.resumable import ResumableUploads
from gateway.domain.conditions import check as check_conditions
from gateway.domain.errors import backend_unavailable, precondition_failed
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ObjectMeta,
    Presigned,
    PresignRequest,
    WriteOptions,
)

# CopyObject copies up to 5 GiB; larger sources are copied with UploadPartCopy.
COPY_OBJECT_MAX = 5 * GIB


class S3Backend(RemoteBackend[S3Context, S3Settings]):
    """One gateway bucket in an S3 bucket (under an optional key prefix)."""

    def __init__(self, settings: S3Settings, observer: StoreObserver | None = None) -> None:
        """observer: told of every request the driver sends to S3."""
        super().__init__(KIND, settings, list_page)
        self._observer = observer
        self._stack = contextlib.AsyncExitStack()
        self._uploads = ResumableUploads(
            S3Uploads(self._context, settings, self._storage_args, self._background)
        )
        # The cleaner is the backend: its sweep covers other multipart uploads too.
        self.capabilities = Capabilities(
            presigner=self,
            uploads=self._uploads,
            cleaner=self,
            lifecycle=S3Lifecycle(self._context),
            version_reader=self,
        )

    async def _open_context(self) -> S3Context:
        return await open_context(self._stack, self._settings, self._observer)

    def _storage_args(self, options: WriteOptions) -> dict[str, str]:
        s = self._settings
        args: dict[str, str] = {}
        if storage_class := options.storage_class or s.storage_class:
            args["StorageClass"] = storage_class
        if sse := options.server_side_encryption or s.server_side_encryption:
            args["ServerSideEncryption"] = sse
        if kms := options.kms_key_id or s.kms_key_id:
            args["SSEKMSKeyId"] = kms
        return args

    # Reading.

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        return await reader.head(await self._context(), key, conditions)

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        return await reader.open_reader(await self._context(), key, offset, limit, conditions)

    async def open_version(self, meta: ObjectMeta, offset: int, limit: int | None) -> ObjectReader:
        return await reader.open_version(await self._context(), meta, offset, limit)

    # Writing.

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        ctx = await self._context()
        return S3Writer(
            ctx,
            key,
            options,
            self._storage_args(options),
            self._settings.part_size,
            self._settings.concurrency,
            self._background,
        )

    # Deleting.

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        ctx = await self._context()
        current = await ctx.head_or_none(key, tags=False)
        check_conditions(key, conditions, current, read=False)
        if current is None:
            return False
        args: dict[str, Any] = {"Bucket": ctx.bucket, "Key": ctx.s3_key(key)}
        if conditions.any:
            args["IfMatch"] = quote_etag(current.etag)
        condition = "if_match" if conditions.if_match else "conditions"
        try:
            await ctx.client.delete_object(**args)
        except S3_ERRORS as error:
            if "IfMatch" in args and error_code_of(error) == "NotImplemented":
                del args["IfMatch"]
                with ctx.errors(key, condition, "DeleteObject"):
                    await ctx.client.delete_object(**args)
                return True
            if is_not_found(error) and conditions.any:
                raise precondition_failed(key=key, condition=condition) from error
            with ctx.errors(key, condition, "DeleteObject"):
                raise
        return True

    # Copying.

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        """CopyObject (up to 5 GiB) or UploadPartCopy, pinned to the source's
        ETag as HEADed, always with MetadataDirective REPLACE so the source's
        checksums land in the destination's metadata (from tags or metadata)."""
        ctx = await self._context()
        source = await self.head(request.source_key, request.source_conditions)
        destination_key, options = request.destination_key, request.options
        conditions = options.conditions
        native, condition = write_conditions(conditions)
        if conditions.any:
            current = await ctx.head_or_none(destination_key, tags=False)
            check_conditions(destination_key, conditions, current, read=False)
        content_type, metadata = request.content_of(source)
        metadata.update(checksum_entries(source.crc32c, source.sha256))
        metadata.update(new_generation())
        common: dict[str, Any] = {
            "Bucket": ctx.bucket,
            "Key": ctx.s3_key(destination_key),
            "ContentType": content_type,
            "Metadata": metadata,
            **self._storage_args(options),
        }
        copy_source = {"Bucket": ctx.bucket, "Key": ctx.s3_key(request.source_key)}
        source_etag = quote_etag(source.etag)
        if source.size <= COPY_OBJECT_MAX:
            try:
                response = await ctx.client.copy_object(
                    **common,
                    **native,
                    CopySource=copy_source,
                    CopySourceIfMatch=source_etag,
                    MetadataDirective="REPLACE",
                )
            except S3_ERRORS as error:
                if is_not_found(error) and condition == "if_match":
                    raise precondition_failed(key=destination_key, condition=condition) from error
                with ctx.errors(destination_key, condition or "source unchanged", "CopyObject"):
                    raise
            etag = unquote_etag(str(response["CopyObjectResult"]["ETag"]))
        else:
            etag = await multipart_copy(
                ctx,
                common,
                native,
                condition,
                copy_source,
                source_etag,
                source.size,
                self._settings.part_size,
                self._settings.concurrency,
                self._background,
                destination_key,
            )
        meta = await ctx.head_or_none(destination_key, tags=False)
        if meta is None or meta.etag != etag:
            raise backend_unavailable(
                backend=KIND,
                detail=f"S3 copy to {destination_key!r} was replaced before it could be read back",
            )
        return dataclasses.replace(meta, crc32c=source.crc32c, sha256=source.sha256)

    # Signed URLs.

    async def sign_url(self, request: PresignRequest) -> Presigned:
        """A URL signed by S3 itself (SigV4): GET, PUT, or a POST policy."""
        presign.check_expiry(request, "S3")
        return await signing.sign_url(await self._context(), request)

    # Maintenance and health (listing is RemoteBackend's).

    # StaleUploadCleaner (resumable uploads: s3/uploads.py).

    async def abort_stale_uploads(self, older_than_s: float, *, dry_run: bool = False) -> int:
        """Abort resumable uploads created, and other multipart uploads under
        the prefix started, more than older_than_s seconds ago; how many were
        aborted, or with dry_run would be (see s3/sweep.py)."""
        ctx = await self._context()
        cutoff = _now() - older_than_s
        return await sweep.abort_stale_uploads(ctx, self._uploads, cutoff, dry_run=dry_run)

    async def probe(self) -> None:
        """RemoteBackend's probe; failing to create the client is BACKEND_UNAVAILABLE too."""
        try:
            await super().probe()
        except S3_ERRORS as error:  # client creation (bad endpoint...)
            raise backend_unavailable(backend=KIND, detail=type(error).__name__) from error

    async def close(self) -> None:
        await self._contexts.close()
        await self._stack.aclose()


def _now() -> float:
    """Wall-clock time; tests replace it."""
    return time.time()

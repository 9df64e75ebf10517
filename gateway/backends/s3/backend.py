"""A driver storing objects in an S3 bucket (AWS or S3-compatible), kind "s3".

One long-lived aioboto3 client per backend, created on first use and closed
by close(). Credentials are the settings' keys when given, else botocore's
default chain (AWS_* environment variables, profiles, instance roles).

Keys. Object key in S3 = settings.prefix + key; listings strip the prefix.

Metadata. User metadata is stored as S3 user metadata (x-amz-meta-*). S3
lower-cases metadata keys, so keys come back lower-cased. The gateway's
checksums are reserved entries sgw-crc32c (8 hex) and sgw-sha256 (64 hex),
stripped from the metadata returned; multipart objects carry them as tags
instead (see s3_io). ObjectMeta.etag is S3's ETag without quotes.

Generation. S3 has no portable generation, so every write (put, multipart,
copy) stores its own in the metadata entry sgw-generation: microseconds since
the epoch when the write began, so it changes on every write, even of the
same bytes. Listings carry no metadata, so their entries say 0 (unknown);
for objects written by other tools, s3_common.generation_of derives one from
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

import asyncio
import contextlib
import dataclasses
import time
from datetime import datetime
from typing import Any

import aioboto3
from botocore.config import Config

from gateway.backends.base import Capabilities, ObjectReader, ObjectWriter
from gateway.backends.s3.common import (
    GIB,
    KIND,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    S3_ERRORS,
    S3Context,
    checksum_entries,
    error_code_of,
    is_invalid_range,
    is_not_found,
    new_generation,
    quote_etag,
    unquote_etag,
)
from gateway.backends.s3.copy import multipart_copy
from gateway.backends.s3.io import S3Reader, S3Writer, write_conditions
from gateway.backends.s3.listing import list_page
from gateway.backends.s3.settings import S3Settings
from gateway.backends.s3.uploads import S3Uploads, owned_by
from gateway.backends.shared import presign
from gateway.backends.shared.resumable import ResumableUploads
from gateway.domain import ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import (
    GatewayError,
    backend_unavailable,
    precondition_failed,
    unsupported,
)
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    Presigned,
    PresignRequest,
    WriteOptions,
)

# CopyObject copies up to 5 GiB; larger sources are copied with UploadPartCopy.
COPY_OBJECT_MAX = 5 * GIB
MAX_OBJECT_SIZE = 5 * 1024**4  # S3's largest object: 5 TiB


def new_session(settings: S3Settings) -> aioboto3.Session:
    """The aioboto3 session of the driver's client: the settings' keys and region,
    else botocore's default chain."""
    return aioboto3.Session(
        aws_access_key_id=settings.access_key or None,
        aws_secret_access_key=settings.secret_key or None,
        region_name=settings.region or None,
    )


def client_config(settings: S3Settings) -> Config:
    """botocore settings of the driver's client (the benchmark's direct client uses
    them too, so both talk to S3 alike)."""
    return Config(
        max_pool_connections=64,
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": settings.addressing_style},
        signature_version="s3v4",
        # Checksums only where S3 requires them: the gateway checks integrity
        # itself, and many S3-compatible stores reject aws-chunked trailing
        # checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


class S3Backend:
    """One gateway bucket in an S3 bucket (under an optional key prefix)."""

    def __init__(self, settings: S3Settings) -> None:
        # Checked here too: settings may be built in code, not only by config.
        if not settings.bucket:
            raise ValueError("S3 bucket name is required")
        if not MIN_PART_SIZE <= settings.part_size <= MAX_PART_SIZE:
            raise ValueError("S3 part_size must be between 5 MiB and 5 GiB")
        if settings.concurrency < 1:
            raise ValueError("S3 concurrency must be >= 1")
        self._settings = settings
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()
        self._ctx: S3Context | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self._uploads = ResumableUploads(
            S3Uploads(self._context, settings, self._storage_args, self._background)
        )
        # The cleaner is the backend: its sweep covers other multipart uploads too.
        self.capabilities = Capabilities(presigner=self, uploads=self._uploads, cleaner=self)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def settings(self) -> S3Settings:
        return self._settings

    async def _context(self) -> S3Context:
        if self._ctx is not None:
            return self._ctx
        async with self._lock:
            if self._closed:
                raise backend_unavailable(KIND, "the backend is closed")
            if self._ctx is None:
                s = self._settings
                client = await self._stack.enter_async_context(
                    new_session(s).client(
                        "s3", endpoint_url=s.endpoint_url or None, config=client_config(s)
                    )
                )
                self._ctx = S3Context(client, s.bucket, s.prefix)
            return self._ctx

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
        ctx = await self._context()
        meta = await ctx.head_or_none(key)
        return check_existing(key, conditions, meta)

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        ctx = await self._context()
        if limit == 0:
            meta = await self.head(key, conditions)
            start, end = ranges.resolve(meta.size, offset, limit)
            return S3Reader(ctx, meta, None, start, end)
        args: dict[str, Any] = {"Bucket": ctx.bucket, "Key": ctx.s3_key(key)}
        if conditions.if_match:
            args["IfMatch"] = quote_etag(conditions.if_match)
        if conditions.if_none_match and conditions.if_none_match != "*":
            args["IfNoneMatch"] = quote_etag(conditions.if_none_match)
        if offset < 0:
            args["Range"] = f"bytes={offset}"  # the last -offset bytes
        elif offset > 0 or limit is not None:
            last = "" if limit is None else str(offset + limit - 1)
            args["Range"] = f"bytes={offset}-{last}"
        try:
            response = await ctx.client.get_object(**args)
        except S3_ERRORS as error:
            if is_invalid_range(error):
                # Past the end, an empty object, or offset == size: S3 says 416
                # to all of these; the contract only refuses offset > size.
                meta = await self.head(key, conditions)
                start, end = ranges.resolve(meta.size, offset, limit)
                return S3Reader(ctx, meta, None, start, end)
            if is_not_found(error):
                check_conditions(key, conditions, None, read=True)
            with ctx.errors(key, "if_match", "GetObject"):
                raise
        ctx.bucket_seen = True
        body = response["Body"]
        try:
            content_range = str(response.get("ContentRange") or "")
            length = int(response["ContentLength"])
            if content_range.startswith("bytes ") and "/" in content_range:
                span, _, total = content_range[6:].partition("/")
                first, _, last_byte = span.partition("-")
                size, start, end, skip = int(total), int(first), int(last_byte) + 1, 0
                if limit is not None:
                    end = min(end, start + limit)
            else:  # the whole object (no Range sent, or the server ignored it)
                size = length
                start, end = ranges.resolve(size, offset, limit)
                skip = start
            meta = await ctx.meta_from(key, response, size=size)
            check_conditions(key, conditions, meta, read=True)
        except BaseException:
            body.close()
            raise
        return S3Reader(ctx, meta, body, start, end, skip)

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
                raise precondition_failed(key, condition) from error
            with ctx.errors(key, condition, "DeleteObject"):
                raise
        return True

    # Listing.

    async def list(self, query: ListQuery) -> ListPage:
        return await list_page(await self._context(), query)

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
                    raise precondition_failed(destination_key, condition) from error
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
                KIND, f"S3 copy to {destination_key!r} was replaced before it could be read back"
            )
        return dataclasses.replace(meta, crc32c=source.crc32c, sha256=source.sha256)

    # Signed URLs.

    async def sign_url(self, request: PresignRequest) -> Presigned:
        """A URL signed by S3 itself (SigV4): GET, PUT, or a POST policy."""
        presign.check_expiry(request, "S3")
        ctx = await self._context()
        key, method = request.key, request.method
        if method == "POST":
            return await self._presign_post(ctx, request)
        params: dict[str, Any] = {"Bucket": ctx.bucket, "Key": ctx.s3_key(key)}
        headers: dict[str, str] = {}
        if method == "GET":
            if request.download:
                params["ResponseContentDisposition"] = presign.download_disposition(request)
            if request.content_type:
                params["ResponseContentType"] = request.content_type
            operation = "get_object"
        elif method == "PUT":
            headers = presign.put_headers(request, KIND)
            if request.content_type:
                params["ContentType"] = request.content_type
            operation = "put_object"
        else:
            raise unsupported(f"signed {method} URLs", KIND)
        with ctx.errors(key, op="presign"):
            url = await ctx.client.generate_presigned_url(
                operation, Params=params, ExpiresIn=request.expires_in_s, HttpMethod=method
            )
        return Presigned(str(url), headers)

    async def _presign_post(self, ctx: S3Context, request: PresignRequest) -> Presigned:
        # Bytes above max_size are refused by S3 itself, before anything is
        # stored (botocore adds the exact key to the policy).
        fields, conditions = presign.post_policy(request, MAX_OBJECT_SIZE)
        with ctx.errors(request.key, op="presign"):
            post = await ctx.client.generate_presigned_post(
                ctx.bucket,
                ctx.s3_key(request.key),
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=request.expires_in_s,
            )
        return presign.signed_post(post)

    # Maintenance and health.

    # StaleUploadCleaner (resumable uploads: s3/uploads.py).

    async def abort_stale_uploads(self, older_than_s: float) -> int:
        """Abort resumable uploads created, and other multipart uploads under
        the prefix started, more than older_than_s seconds ago; how many were
        aborted. A resumable upload is judged by its record, never by its
        multipart upload's date.

        Multipart uploads are listed before the records: a resumable upload's
        record is written before its multipart upload is created, so every
        multipart upload listed has its record in the listing that follows
        (or none: not a resumable one)."""
        ctx = await self._context()
        cutoff = _now() - older_than_s
        candidates: list[tuple[str, str]] = []
        args: dict[str, Any] = {"Bucket": ctx.bucket, "Prefix": ctx.prefix}
        while True:
            with ctx.errors(op="ListMultipartUploads"):
                response = await ctx.client.list_multipart_uploads(**args)
            for upload in response.get("Uploads", []):
                initiated: datetime = upload["Initiated"]
                if initiated.timestamp() < cutoff:
                    candidates.append((str(upload["Key"]), str(upload["UploadId"])))
            if not response.get("IsTruncated"):
                break
            args["KeyMarker"] = response.get("NextKeyMarker", "")
            args["UploadIdMarker"] = response.get("NextUploadIdMarker", "")
        swept = await self._uploads.sweep(cutoff)
        aborted, owned = swept.aborted, owned_by(swept, ctx.s3_key)
        for key, upload_id in candidates:
            if upload_id in owned.upload_ids or key in owned.keys:
                continue  # a resumable upload's: judged by its record above
            try:
                await ctx.client.abort_multipart_upload(
                    Bucket=ctx.bucket, Key=key, UploadId=upload_id
                )
                aborted += 1
            except S3_ERRORS as error:
                if error_code_of(error) != "NoSuchUpload":
                    with ctx.errors(op="AbortMultipartUpload"):
                        raise
        return aborted

    async def probe(self) -> None:
        try:
            ctx = await self._context()
            await ctx.check_bucket()
        except GatewayError as error:
            raise backend_unavailable(KIND, error.message) from error
        except S3_ERRORS as error:  # client creation (bad endpoint...)
            raise backend_unavailable(KIND, type(error).__name__) from error

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._background:
                await asyncio.wait(set(self._background))
            self._ctx = None
            await self._stack.aclose()


def _now() -> float:
    """Wall-clock time; tests replace it."""
    return time.time()

"""A driver storing objects in a Google Cloud Storage bucket, kind "gcs".

google-cloud-storage is a blocking library: every call runs in a thread pool
of settings.threads threads owned by the backend, so the event loop never
waits on GCS and a slow GCS only slows the RPCs that use it. One client (and
one HTTP connection pool sized to the thread pool) per backend, created on
first use in the pool (finding credentials may block) and closed by close().

Credentials: the settings' credentials file, else Application Default
Credentials. With an emulator (STORAGE_EMULATOR_HOST) requests are
anonymous, and a credentials file given too only signs URLs.

Keys. Object name = settings.prefix + key; listings strip the prefix.

Metadata. User metadata is GCS custom metadata (keys keep their case). The
gateway's checksums are reserved entries sgw-crc32c and sgw-sha256, stripped
from what callers get back; ObjectMeta.crc32c is GCS's own CRC32C (the same
function), so objects written by other tools have one too.

Generation and ETag. ObjectMeta.generation is GCS's generation, and the ETag
is that generation in decimal (gcs/common.py, etag_of), so every precondition is
a generation precondition that GCS evaluates atomically.

Reads check their conditions against the object's metadata and then read
that generation only. Delete reads the metadata (the contract says whether
the object existed), then deletes with ifGenerationMatch set to what it read
when there are conditions. Copy is objects.rewrite, repeated with its
rewrite token until done (large or cross-location copies), pinned to the
source's generation, with the destination's conditions sent to GCS.

Resumable uploads are GCS resumable sessions with a record object under
`<prefix>.storagegw/uploads/` (gcs/uploads.py); listings hide that folder.

This module holds the operations; the client and credentials are built by
gcs/connection.py, bytes are written by gcs/writer.py and read by
gcs/reader.py, listings paged by gcs/listing.py and URLs signed by
gcs/signing.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.backends.base import Capabilities, ObjectReader, ObjectWriter
from gateway.backends.gcs.common import (
    GCS_ERRORS,
    KIND,
    GcsContext,
    http_status,
    is_not_found,
    map_error,
    meta_from,
    resource_of,
    write_preconditions,
)
from gateway.backends.gcs.connection import connect
from gateway.backends.gcs.lifecycle import GcsLifecycle
from gateway.backends.gcs.listing import list_page
from gateway.backends.gcs.reader import GcsReader
from gateway.backends.gcs.settings import GcsSettings
from gateway.backends.gcs.signing import sign_url
from gateway.backends.gcs.uploads import GcsUploads
from gateway.backends.gcs.writer import GcsWriter
from gateway.backends.observer import StoreObserver
from gateway.backends.shared import presign
from gateway.backends.shared.remote_backend import RemoteBackend
from gateway.backends.shared.reserved_metadata import checksum_entries
from gateway.backends.shared.resumable import ResumableUploads
from gateway.domain import ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import (
    precondition_failed,
    unsupported,
)
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ObjectMeta,
    Presigned,
    PresignRequest,
    WriteOptions,
)

log = logging.getLogger(__name__)


class GcsBackend(RemoteBackend[GcsContext, GcsSettings]):
    """One gateway bucket in a GCS bucket (under an optional key prefix)."""

    def __init__(self, settings: GcsSettings, observer: StoreObserver | None = None) -> None:
        """observer: told of every request the driver sends to GCS."""
        super().__init__(KIND, settings, list_page)
        self._observer = observer
        self._pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="gcs")
        self._signer: Any = None  # credentials that sign URLs, when there are any
        self._session: Any = None  # the client's HTTP session (connection pool)
        uploads = ResumableUploads(GcsUploads(self._context, self.open_write, self._background))
        self.capabilities = Capabilities(
            presigner=self,
            uploads=uploads,
            cleaner=uploads,
            lifecycle=GcsLifecycle(self._context),
            version_reader=self,
        )

    async def _open_context(self) -> GcsContext:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._connect)
        except GCS_ERRORS as error:
            raise map_error(error, bucket=self._settings.bucket, op="connect") from error

    def _connect(self) -> GcsContext:
        """The client (in the pool: finding credentials may ask a metadata server)."""
        s = self._settings
        connection = connect(s, self._observer)
        self._signer, self._session = connection.signer, connection.session
        return GcsContext(
            client=connection.client,
            bucket=connection.client.bucket(s.bucket),
            prefix=s.prefix,
            pool=self._pool,
            retry=connection.retry,
            chunk_size=s.chunk_size,
        )

    # Reading.

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        ctx = await self._context()
        return check_existing(key, conditions, await ctx.head_or_none(key))

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        ctx = await self._context()
        meta = await self.head(key, conditions)
        start, end = ranges.resolve(meta.size, offset, limit)
        return GcsReader(ctx, meta, start, end)

    async def open_version(self, meta: ObjectMeta, offset: int, limit: int | None) -> ObjectReader:
        # The reader fetches the generation meta names: no metadata request.
        start, end = ranges.resolve(meta.size, offset, limit)
        return GcsReader(await self._context(), meta, start, end)

    # Writing.

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        if options.server_side_encryption:
            # GCS always encrypts; a customer-managed key is kms_key_id.
            raise unsupported(option="server_side_encryption", backend=KIND)
        ctx = await self._context()
        preconditions = write_preconditions(key, options.conditions)
        if preconditions.extra_not_match is not None:
            current = await ctx.head_or_none(key)
            if current is not None and current.generation == preconditions.extra_not_match:
                raise precondition_failed(key=key, condition="if_generation_not_match")
        return GcsWriter(
            ctx,
            key,
            options,
            preconditions,
            self._background,
            options.storage_class or self._settings.storage_class,
            options.kms_key_id or self._settings.kms_key,
        )

    # Deleting.

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        ctx = await self._context()
        current = await ctx.head_or_none(key)
        check_conditions(key, conditions, current, read=False)
        if current is None:
            return False
        args: dict[str, Any] = {"retry": ctx.retry}
        if conditions.any:
            # Only the object the conditions were checked against.
            args["if_generation_match"] = current.generation
        condition = "if_match" if conditions.if_match else "conditions"
        try:
            await ctx.run(ctx.blob(key).delete, **args)
        except GCS_ERRORS as error:
            if is_not_found(error) and not conditions.any:
                return False  # deleted by someone else meanwhile
            if is_not_found(error) or http_status(error) == 412:
                raise precondition_failed(key=key, condition=condition) from error
            with ctx.errors(key, condition, "objects.delete"):
                raise
        return True

    # Copying.

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        """objects.rewrite, pinned to the source's generation as read, carrying
        the source's checksums into the destination's metadata."""
        ctx = await self._context()
        source = await self.head(request.source_key, request.source_conditions)
        destination_key, options = request.destination_key, request.options
        preconditions = write_preconditions(destination_key, options.conditions)
        if preconditions.extra_not_match is not None:
            current = await ctx.head_or_none(destination_key)
            if current is not None and current.generation == preconditions.extra_not_match:
                raise precondition_failed(key=destination_key, condition="if_generation_not_match")
        content_type, metadata = request.content_of(source)
        metadata.update(checksum_entries(source.crc32c, source.sha256))
        destination = ctx.blob(destination_key)
        destination.content_type = content_type
        destination.metadata = metadata
        if storage_class := options.storage_class or self._settings.storage_class:
            destination.storage_class = storage_class
        if kms_key := options.kms_key_id or self._settings.kms_key:
            destination.kms_key_name = kms_key
        source_blob = ctx.blob(request.source_key)
        token: str | None = None
        condition = preconditions.condition or "source unchanged"
        while True:
            try:
                token, _, _ = await ctx.run(
                    destination.rewrite,
                    source_blob,
                    token=token,
                    if_source_generation_match=source.generation,
                    retry=ctx.retry,
                    **preconditions.kwargs(),
                )
            except GCS_ERRORS as error:
                if is_not_found(error) and preconditions.condition:
                    raise precondition_failed(key=destination_key, condition=condition) from error
                if is_not_found(error) or http_status(error) == 412:
                    # The source changed since it was read, or the destination
                    # does not meet its conditions.
                    raise precondition_failed(key=destination_key, condition=condition) from error
                with ctx.errors(destination_key, condition, "objects.rewrite"):
                    raise
            if token is None:
                break
        meta = meta_from(destination_key, resource_of(destination))
        # crc32c is GCS's own either way; sha256 is the source's.
        return dataclasses.replace(meta, sha256=source.sha256 or meta.sha256)

    # Signed URLs.

    async def sign_url(self, request: PresignRequest) -> Presigned:
        """A V4 signed URL (GET, PUT) or POST policy, signed for GCS itself."""
        presign.check_expiry(request, "GCS")
        ctx = await self._context()
        # Read after _context(): connecting is what finds the signer.
        return await sign_url(ctx, self._settings, self._signer, request)

    # Closing (listing and the probe are RemoteBackend's).

    async def close(self) -> None:
        ctx = await self._contexts.close()
        session, self._session = self._session, None
        if ctx is not None and session is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, session.close)
        # Threads still finishing a dropped download window end on their own.
        self._pool.shutdown(wait=False, cancel_futures=True)

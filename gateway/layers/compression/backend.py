"""CompressingBackend: a driver whose objects of compressible types are
stored compressed (zstd, seekable format) when that saves enough, and read
back as the original bytes. Callers see the original's size and checksums;
the etag and generation are the stored object's.

What it passes on of the driver's capabilities: resumable uploads (stored as
a Put stores them, uploads.py), the mover, the counter and the cleaner; not the
presigner, since a URL the store signed would serve or take the stored bytes:
the gateway signs and serves the bucket's URLs itself."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.backends.base import (
    Backend,
    Capabilities,
    ObjectReader,
    ObjectWriter,
)
from gateway.backends.forwarding import ForwardingBackend, ForwardingMover
from gateway.domain import ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    WriteOptions,
)
from gateway.layers.compression.cold import open_cold
from gateway.layers.compression.layouts import (
    Layouts,
    as_original,
    is_compressed,
    marked,
    user_metadata,
)
from gateway.layers.compression.reader import CompressedReader, open_frames
from gateway.layers.compression.settings import CompressionSettings
from gateway.layers.compression.uploads import CompressedUploads
from gateway.layers.compression.writer import CompressingWriter

# Listing entries described at once, where a listing needs a read of each.
LIST_CONCURRENCY = 8


def _users(options: WriteOptions) -> WriteOptions:
    """options without any reserved entry a caller put in its metadata."""
    metadata = user_metadata(options.metadata)
    if len(metadata) == len(options.metadata):
        return options
    return dataclasses.replace(options, metadata=metadata)


class CompressingBackend(ForwardingBackend):
    """A Backend over inner, compressing what settings say (delete, probe
    and close are the driver's own)."""

    def __init__(self, inner: Backend, settings: CompressionSettings) -> None:
        self._settings = settings
        self._layouts = Layouts(inner)
        caps = inner.capabilities
        capabilities = Capabilities(
            presigner=None,
            uploads=(
                None
                if caps.uploads is None
                else CompressedUploads(caps.uploads, settings, self._layouts)
            ),
            upload_counter=caps.upload_counter,
            mover=None if caps.mover is None else ForwardingMover(caps.mover, self._moved),
            cleaner=caps.cleaner,
            # Expiry and transitions act on keys, which compression keeps.
            lifecycle=caps.lifecycle,
            calls_stay_local=caps.calls_stay_local,
        )
        super().__init__(inner, capabilities)

    async def _moved(self, source_key: str, destination_key: str, moved: ObjectMeta) -> ObjectMeta:
        """What the driver's mover moved, described as callers see it."""
        return await self._layouts.original_of(destination_key, moved)

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        return await self._layouts.original_of(key, await self._inner.head(key, conditions))

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        known = await self._read_known(key, offset, limit, conditions)
        if known is not None:
            return known
        # A cold read: the driver's read first, as for any bucket (cold.py).
        return await open_cold(self._inner, self._layouts, key, offset, limit, conditions)

    async def _read_known(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader | None:
        """The range of the compressed object last seen at key, in one read
        of its frames, when it is still the object there; None otherwise."""
        known = self._layouts.known(key)
        if known is None:
            return None
        stored, layout = known
        if offset > layout.original.size:
            return None  # the object there now may be longer: the driver tells
        start, end = ranges.resolve(layout.original.size, offset, limit)
        frames = layout.covering(start, end)
        if not frames:
            return None
        try:
            inner = await open_frames(self._inner, key, stored.etag, frames)
        except GatewayError as error:
            if error.reason not in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND):
                raise
            self._layouts.forget(key)  # replaced or deleted since
            return None
        assert inner is not None
        # The object is the one seen: the caller's conditions are judged on it.
        meta = as_original(inner.meta, layout.original)
        try:
            check_conditions(key, conditions, meta, read=True)
        except BaseException:
            await inner.close()
            raise
        return CompressedReader(meta, inner, frames, start, end)

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        options = _users(options)
        if not self._settings.compresses(options.content_type):
            return await self._inner.open_write(key, options)
        return CompressingWriter(self._inner, key, options, self._settings, self._layouts.remember)

    async def list(self, query: ListQuery) -> ListPage:
        page = await self._inner.list(query)
        limit = asyncio.Semaphore(LIST_CONCURRENCY)
        objects = await asyncio.gather(*(self._entry(entry, limit) for entry in page.objects))
        return dataclasses.replace(page, objects=list(objects))

    async def _entry(self, entry: ObjectMeta, limit: asyncio.Semaphore) -> ObjectMeta:
        """A listing entry with the original's size (and, where the listing
        describes objects whole, checksums)."""
        if entry.crc32c is not None:
            # A listing that describes objects whole (every object the
            # gateway writes has a CRC32C): compressed ones are marked.
            if not is_compressed(entry):
                return as_original(entry, None)
            async with limit:
                return await self._layouts.original_of(entry.key, entry)
        # A lean listing (S3's: size and etag alone) tells nothing of
        # compression: each entry's Head does.
        async with limit:
            try:
                stored = await self._inner.head(entry.key)
            except GatewayError as error:
                if error.reason is Reason.OBJECT_NOT_FOUND:
                    return entry  # deleted since it was listed
                raise
            if not is_compressed(stored) or stored.etag != entry.etag:
                return entry
            layout = await self._layouts.of(entry.key, stored)
        return dataclasses.replace(entry, size=layout.original.size)

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        # The stored bytes are copied as they are; a copy that replaces the
        # metadata keeps the entry marking them compressed.
        request = dataclasses.replace(request, options=_users(request.options))
        if request.replace_metadata:
            source = await self._inner.head(request.source_key, request.source_conditions)
            if is_compressed(source):
                conditions = request.source_conditions
                if not conditions.if_match:
                    conditions = dataclasses.replace(conditions, if_match=source.etag)
                options = dataclasses.replace(
                    request.options, metadata=marked(request.options.metadata)
                )
                request = dataclasses.replace(
                    request, options=options, source_conditions=conditions
                )
        copied = await self._inner.copy(request)
        return await self._layouts.original_of(request.destination_key, copied)

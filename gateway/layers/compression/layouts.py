"""How a compressed object is recognised (a reserved metadata entry), what
callers are told of it (the original's size and checksums, never the entry),
and its layout, read from the stored object's tail and kept for the objects
read most recently."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping

from gateway.backends.base import Backend, ObjectReader
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, ObjectMeta
from gateway.layers.compression import seekable
from gateway.layers.compression.seekable import DamagedObject, Layout, Original

# The reserved entry marking a compressed object, and its value. Not under
# sgw- (which S3 and GCS drivers strip from what they read back); callers'
# metadata under this prefix is dropped on every write to the bucket.
RESERVED_PREFIX = "sgwc-"
ENCODING = "sgwc-encoding"
ZSTD_SEEKABLE = "zstd-seekable"
# The first read of a tail: enough for the seek table of 2,000 frames.
TAIL_PROBE = 16 * 1024
# The chunks stored bytes are read in.
STORED_CHUNK = 256 * 1024
# Layouts kept, and the largest kept (in frames).
CACHED_LAYOUTS = 1024
CACHED_FRAMES = 4096


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The caller's metadata, without this layer's reserved entries."""
    return {k: v for k, v in metadata.items() if not k.lower().startswith(RESERVED_PREFIX)}


def is_compressed(meta: ObjectMeta) -> bool:
    return meta.metadata.get(ENCODING) == ZSTD_SEEKABLE


def marked(metadata: Mapping[str, str]) -> dict[str, str]:
    """metadata (the caller's) with the entry marking a compressed object."""
    return {**user_metadata(metadata), ENCODING: ZSTD_SEEKABLE}


def as_original(meta: ObjectMeta, original: Original | None) -> ObjectMeta:
    """What a caller is told of the stored object meta describes: with the
    original's size and checksums when compressed (original given)."""
    if original is None:
        if not any(k.lower().startswith(RESERVED_PREFIX) for k in meta.metadata):
            return meta
        return dataclasses.replace(meta, metadata=user_metadata(meta.metadata))
    return dataclasses.replace(
        meta,
        size=original.size,
        crc32c=original.crc32c,
        sha256=original.sha256,
        metadata=user_metadata(meta.metadata),
    )


def damaged(key: str, error: DamagedObject) -> GatewayError:
    return GatewayError(Reason.INTERNAL, f"the stored object {key!r} is damaged: {error}")


def pinned(etag: str) -> Conditions:
    """Conditions reading exactly the stored object of that etag."""
    return Conditions(if_match=etag)


async def open_stored(
    backend: Backend, meta: ObjectMeta, offset: int, limit: int | None
) -> ObjectReader:
    """A range of the stored object meta describes (just read or listed),
    pinned to it: in one request where the driver reads a version it
    described (its version_reader), else a read conditioned on its etag."""
    versions = backend.capabilities.version_reader
    if versions is not None:
        return await versions.open_version(meta, offset, limit)
    return await backend.open_read(meta.key, offset, limit, pinned(meta.etag))


async def read_stored(backend: Backend, meta: ObjectMeta, offset: int, size: int | None) -> bytes:
    """Stored bytes [offset, offset + size) of the object meta describes."""
    reader = await open_stored(backend, meta, offset, size)
    try:
        chunk_size = STORED_CHUNK if size is None else max(min(size, STORED_CHUNK), 1)
        return b"".join([chunk async for chunk in reader.chunks(chunk_size)])
    finally:
        await reader.close()


class Layouts:
    """The layouts of the compressed objects seen last, by key: each with the
    stored object's metadata (its etag and size say which object it is)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._cache: OrderedDict[str, tuple[ObjectMeta, Layout]] = OrderedDict()

    def remember(self, meta: ObjectMeta, layout: Layout) -> None:
        if len(layout.frames) > CACHED_FRAMES or not meta.etag:
            return
        self._cache[meta.key] = (meta, layout)
        self._cache.move_to_end(meta.key)
        while len(self._cache) > CACHED_LAYOUTS:
            self._cache.popitem(last=False)

    def known(self, key: str) -> tuple[ObjectMeta, Layout] | None:
        """The stored object last seen at key, if compressed, and its layout
        (it may have been replaced since)."""
        return self._cache.get(key)

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    async def of(self, key: str, meta: ObjectMeta) -> Layout:
        """The layout of the compressed object meta describes (as stored)."""
        cached = self._cache.get(key)
        if cached is not None and (cached[0].etag, cached[0].size) == (meta.etag, meta.size):
            self._cache.move_to_end(key)
            return cached[1]
        meta = dataclasses.replace(meta, key=key)
        try:
            size = min(meta.size, TAIL_PROBE)
            last = await read_stored(self._backend, meta, meta.size - size, size)
            needed = seekable.tail_size(seekable.frame_count(last))
            if needed > len(last) and needed <= meta.size:
                last = await read_stored(self._backend, meta, meta.size - needed, needed)
            layout = seekable.parse_tail(meta.size, last)
        except DamagedObject as error:
            raise damaged(key, error) from None
        self.remember(meta, layout)
        return layout

    async def original_of(self, key: str, meta: ObjectMeta) -> ObjectMeta:
        """What a caller is told of the stored object meta describes."""
        if not is_compressed(meta):
            return as_original(meta, None)
        return as_original(meta, (await self.of(key, meta)).original)

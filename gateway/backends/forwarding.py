"""A Backend, an ObjectReader, a ResumableBackend and an ObjectMover that pass
every call on to another: the bases of the wrappers around a bucket's driver (telemetry,
CDN purges, dedup...), so that each one writes only the calls it changes.

(ForwardingWriter and ForwardingUploadWriter, their counterparts for the
writers, stand in base.py beside the protocols they forward.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from gateway.backends.base import (
    Backend,
    Capabilities,
    Encoded,
    ObjectMover,
    ObjectReader,
    ObjectWriter,
    ResumableBackend,
    Resumed,
)
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    UploadStatus,
    WriteOptions,
)


class ForwardingBackend:
    """A Backend passing every call on to inner, with inner's kind, and
    inner's capabilities unless it is given its own (a wrapper passes on
    exactly those it chooses to: see Capabilities)."""

    def __init__(self, inner: Backend, capabilities: Capabilities | None = None) -> None:
        self._inner = inner
        self._capabilities = inner.capabilities if capabilities is None else capabilities

    @property
    def kind(self) -> str:
        return self._inner.kind

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        return await self._inner.head(key, conditions)

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        return await self._inner.open_read(key, offset, limit, conditions)

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return await self._inner.open_write(key, options)

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        return await self._inner.delete(key, conditions)

    async def list(self, query: ListQuery) -> ListPage:
        return await self._inner.list(query)

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        return await self._inner.copy(request)

    async def probe(self) -> None:
        await self._inner.probe()

    async def close(self) -> None:
        await self._inner.close()


class ForwardingReader:
    """An ObjectReader passing every call on to another."""

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader

    @property
    def meta(self) -> ObjectMeta:
        return self._reader.meta

    @property
    def start(self) -> int:
        return self._reader.start

    @property
    def end(self) -> int:
        """One past the last byte this reader serves."""
        return self._reader.end

    def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        return self._reader.chunks(chunk_size)

    def encoded(
        self, chunk_size: int, encode: Callable[[bytes], Encoded]
    ) -> AsyncIterator[tuple[Encoded, int]]:
        return self._reader.encoded(chunk_size, encode)

    def held(self) -> bytes | None:
        return self._reader.held()

    async def close(self) -> None:
        await self._reader.close()


class ForwardingUploads:
    """A ResumableBackend passing every call on to another."""

    def __init__(self, uploads: ResumableBackend) -> None:
        self._uploads = uploads

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        return await self._uploads.start_upload(key, options, state)

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        return await self._uploads.query_upload(key, handle)

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        return await self._uploads.resume_upload(key, handle)

    async def abort_upload(self, key: str, handle: str) -> bool:
        return await self._uploads.abort_upload(key, handle)


# What a wrapper does once a move is done: given the source key, the
# destination key and the driver's description of what it moved, the
# description the caller gets.
Moved = Callable[[str, str, ObjectMeta], Awaitable[ObjectMeta]]


class ForwardingMover:
    """An ObjectMover passing every move on to another, then, when given
    moved, handing what it moved to moved (a wrapper that only acts after a
    move needs no mover of its own)."""

    def __init__(self, mover: ObjectMover, moved: Moved | None = None) -> None:
        self._mover = mover
        self._moved = moved

    async def move(
        self, source_key: str, destination_key: str, conditions: Conditions = NO_CONDITIONS
    ) -> ObjectMeta:
        meta = await self._mover.move(source_key, destination_key, conditions)
        if self._moved is None:
            return meta
        return await self._moved(source_key, destination_key, meta)

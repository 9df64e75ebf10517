"""Streaming readers for downloads: ObjectReader (sync) and AsyncObjectReader.

Both keep their state in _streams.ReaderState, which verifies every chunk
and, at the end, the whole range; they differ only in how they wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypeVar

import grpc
import grpc.aio

from storagegw._common import AsyncClosedOnExit, ClosedOnExit, converted_rpc_errors
from storagegw._crc32c import Buffer, accelerated
from storagegw._digests import ObjectDigest
from storagegw._streams import GetMessage, ReaderState
from storagegw._types import ByteRange, ObjectInfo
from storagegw.v1 import storage_pb2

__all__ = ["AsyncObjectReader", "ObjectReader", "checksumming"]

_Result = TypeVar("_Result")
if TYPE_CHECKING:  # grpc.aio's call classes are not subscriptable at run time
    GetCall: TypeAlias = grpc.aio.UnaryStreamCall[storage_pb2.GetRequest, bytes]


# Checksumming fewer bytes than this runs on the event loop: a worker thread
# hop costs about as much as hashing this many bytes natively.
_INLINE_BYTES = 64 * 1024


async def checksumming(work: Callable[[], _Result], size: int) -> _Result:
    """Run checksum work over `size` bytes off the event loop, in a worker
    thread (SHA-256 alone costs ~0.7 ms per MiB); a few bytes, natively
    checksummed, cost less than the hop and run inline."""
    if size < _INLINE_BYTES and accelerated():
        return work()
    return await asyncio.to_thread(work)


class _Reader:
    """What both readers hold: the verifying state, and what it has learnt."""

    def __init__(
        self, key: str, digest: ObjectDigest | None = None, *, sha256: bool = False
    ) -> None:
        self._state = ReaderState(key, digest, sha256=sha256)

    @property
    def info(self) -> ObjectInfo:
        return self._state.info

    @property
    def content_range(self) -> ByteRange:
        return self._state.content_range


class ObjectReader(_Reader, ClosedOnExit):
    """A download in progress: verified chunks, as an iterator or via read().

    Created by Client.open(), which has already received the first message:
    .info and .content_range are available at once. Use it as a context
    manager, or call close(), to cancel the download when not read to the end.
    The whole-object checksums are verified when the end is reached; a
    mismatch raises ChecksumMismatch from the last read.
    """

    def __init__(
        self,
        call: grpc.CallIterator[bytes],
        key: str,
        digest: ObjectDigest | None = None,
        *,
        sha256: bool = False,
    ) -> None:
        super().__init__(key, digest, sha256=sha256)
        self._call = call
        self._responses = iter(call)
        try:
            first = self._receive()
        except BaseException:
            self.close()
            raise
        if first:
            self._state.buffer += first

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.views():
            yield chunk if isinstance(chunk, bytes) else bytes(chunk)

    def views(self) -> Iterator[Buffer]:
        """The verified chunks as they are held: views of the received
        messages, valid for as long as they are kept (a download writes each
        where it lies; __iter__ makes bytes of them)."""
        if self._state.buffer:
            yield self._state.take_buffered()
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all remaining bytes when size < 0); b"" at the end."""
        if size < 0:
            return b"".join(list(self.views()))
        while len(self._state.buffer) < size and (chunk := self._next_chunk()) is not None:
            self._state.buffer += chunk
        return self._state.take_buffered(size)

    def close(self) -> None:
        if not self._state.ended:
            self._call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs

    def _next_chunk(self) -> Buffer | None:
        while (data := self._receive()) is not None:
            if data:
                return data
        return None

    def _receive(self) -> Buffer | None:
        if self._state.ended:
            return None
        try:
            with converted_rpc_errors():
                response = next(self._responses, None)
            return self._state.accept(response)
        except BaseException:
            self.close()
            raise


class AsyncObjectReader(_Reader, AsyncClosedOnExit):
    """A download in progress: `async with client.open(key) as reader`.

    Also `reader = await client.open(key)`. Iterate with `async for` or call
    read(); the whole object is verified when the end is reached.
    """

    def __init__(
        self,
        start_call: Callable[[], Awaitable[GetCall]],
        key: str,
        digest: ObjectDigest | None = None,
        *,
        sha256: bool = False,
    ) -> None:
        super().__init__(key, digest, sha256=sha256)
        self._start_call = start_call
        self._call: GetCall | None = None
        self._responses: AsyncIterator[bytes] | None = None

    async def start(self) -> Self:
        """Send the request and receive the object's metadata (idempotent)."""
        if self._call is None:
            self._call = await self._start_call()
            self._responses = aiter(self._call)
            first = await self._receive(_kept, blocks=False)
            if first:
                self._state.buffer += first
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def _close_on_exit(self) -> None:
        self.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.views():
            yield chunk if isinstance(chunk, bytes) else bytes(chunk)

    async def views(self) -> AsyncIterator[Buffer]:
        """The verified chunks as they are held (see ObjectReader.views)."""
        await self.start()
        if self._state.buffer:
            yield self._state.take_buffered()
        while (chunk := await self._next_chunk()) is not None:
            yield chunk

    async def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all remaining bytes when size < 0); b"" at the end."""
        await self.start()
        if size < 0:
            return b"".join([chunk async for chunk in self.views()])
        while len(self._state.buffer) < size and (chunk := await self._next_chunk()) is not None:
            self._state.buffer += chunk
        return self._state.take_buffered(size)

    async def read_into(self, write: Callable[[Buffer], int]) -> tuple[int, int] | None:
        """Hand the next verified chunk to `write` (a blocking file write):
        (its length, what write returned), or None at the (verified) end.

        The chunk is checked and written in one worker-thread hop: a hop
        each costs a thread wake-up and a loop wake-up more per chunk, and
        the write then copies bytes gone cold in another core's cache.
        """
        await self.start()
        if self._state.buffer:
            chunk = self._state.take_buffered()
            return len(chunk), await asyncio.to_thread(write, chunk)
        while (received := await self._receive(partial(_written, write), blocks=True)) is not None:
            if received[0]:
                return received
        return None

    def close(self) -> None:
        if self._call is not None and not self._state.ended:
            self._call.cancel()

    async def _next_chunk(self) -> Buffer | None:
        while (data := await self._receive(_kept, blocks=False)) is not None:
            if data:
                return data
        return None

    async def _receive(self, then: Callable[[Buffer], _Result], *, blocks: bool) -> _Result | None:
        """The next response's verified data (b"" for none) passed through
        `then` where it is checked (see checksumming; in a worker thread
        whatever the size when `then` blocks); None once the stream has ended."""
        if self._state.ended or self._responses is None:
            return None
        try:
            with converted_rpc_errors():
                response = await anext(self._responses, None)
            if response is None:  # the end: the whole range's checks, no data
                await checksumming(partial(self._state.accept, None), 0)
                return None
            size = _INLINE_BYTES if blocks else self._state.chunk_bound(response)
            return await checksumming(partial(self._accepted, response, then), size)
        except BaseException:
            self.close()
            raise

    def _accepted(self, response: GetMessage, then: Callable[[Buffer], _Result]) -> _Result:
        data = self._state.accept(response)
        return then(data if data is not None else b"")


def _kept(data: Buffer) -> Buffer:
    return data


def _written(write: Callable[[Buffer], int], data: Buffer) -> tuple[int, int]:
    """(len(data), write(data)); (0, 0) with no call for no data."""
    return (len(data), write(data)) if data else (0, 0)

"""AsyncClient's I/O: it performs a flow's effects by awaiting.

All that decides what to send, verify or retry is in the flows (_flows.py),
shared with the sync client; here are only the grpc.aio calls, the Put
stream written message by message (_aio_put.py), file work in worker
threads (so the loop stays free) and asyncio.sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, TypeVar, cast

import grpc
import grpc.aio

from storagegw import _effects as effects
from storagegw import _files
from storagegw._aio_put import chain, peek, send
from storagegw._common import BinaryReader, ChannelPlan, converted_rpc_errors
from storagegw._crc32c import accelerated
from storagegw._credentials import AsyncCallAuth, Metadata
from storagegw._readers import AsyncObjectReader, checksumming
from storagegw._streams import PutStream
from storagegw._types import ObjectInfo, Progress, UploadStatus
from storagegw._wire import PutMessage, get_method, put_method, put_one_method
from storagegw.v1 import storage_pb2, storage_pb2_grpc

if TYPE_CHECKING:
    from storagegw._aio_put import PutCall
    from storagegw._readers import GetCall
    from storagegw.v1.storage_pb2_grpc import StorageServiceAsyncStub

__all__ = ["AsyncTransport", "source_blocks"]

_Result = TypeVar("_Result")


class AsyncTransport:
    """Runs flows over a grpc.aio.Channel, awaiting each effect."""

    def __init__(
        self,
        plan: ChannelPlan[grpc.aio.Channel],
        chunk_size: int,
        auth: AsyncCallAuth | None = None,
    ) -> None:
        channel, self._owns_channel = plan.open(grpc.aio.insecure_channel, grpc.aio.secure_channel)
        self._channel = channel
        self._stub: StorageServiceAsyncStub = storage_pb2_grpc.StorageServiceStub(channel)
        self._put_method: grpc.aio.StreamUnaryMultiCallable[PutMessage, storage_pb2.PutResponse] = (
            put_method(channel)
        )
        self._put_one: grpc.aio.UnaryUnaryMultiCallable[PutMessage, storage_pb2.PutResponse] = (
            put_one_method(channel)
        )
        self._get_method: grpc.aio.UnaryStreamMultiCallable[storage_pb2.GetRequest, bytes] = (
            get_method(channel)
        )
        self._chunk_size = chunk_size
        self._auth = auth if auth is not None else AsyncCallAuth(None, None)

    async def close(self) -> None:
        if self._owns_channel:
            await self._channel.close(None)

    async def run(self, flow: effects.Flow[_Result]) -> _Result:
        """Drive `flow` to its end: await each effect, send back its result or
        throw its error in (cancellation too: the flow may yield clean-up)."""
        try:
            effect = next(flow)
            while True:
                try:
                    result = await self._perform(effect)
                except BaseException as error:
                    effect = flow.throw(error)
                else:
                    effect = flow.send(result)
        except StopIteration as end:
            return cast(_Result, end.value)

    def reader(self, read: effects.OpenRead) -> AsyncObjectReader:
        """A reader that sends the Get when first awaited or entered."""

        async def start() -> GetCall:
            call: GetCall = self._get_method(read.request, metadata=await self._auth.metadata())
            return call

        return AsyncObjectReader(start, read.key, read.digest, sha256=read.sha256)

    async def _perform(self, effect: effects.Effect) -> object:
        match effect:
            case effects.Call():
                return await self._call(effect)
            case effects.BestEffort(call=call):
                # Shielded: a cancelled task still tells the gateway (best effort).
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(self._call(call))
                return None
            case effects.Sleep(seconds=seconds):
                await asyncio.sleep(seconds)
                return None
            case effects.Blocking(work=work):
                return await asyncio.to_thread(work)
            case effects.SendPut(stream=stream, blocks=blocks, progress=progress):
                return await self._put(stream, _thread_requests(stream, blocks), progress)
            case effects.PutSource():
                return await self._put_source(effect)
            case effects.OpenRead():
                reader = await self.reader(effect).start()
                return effects.OpenedRead(reader, reader.views())
            case effects.ReadChunk(chunks=chunks):
                assert isinstance(chunks, AsyncIterator)
                return await anext(chunks, None)
            case effects.ReadChunkInto(opened=opened, write=write):
                assert isinstance(opened.reader, AsyncObjectReader)
                return await opened.reader.read_into(write)
            case effects.Concurrently(flows=flows, stop=stop):
                return await self._concurrently(flows, stop)
        raise TypeError(f"not an effect of the async client: {effect!r}")

    async def _concurrently(
        self, flows: tuple[effects.Flow[object], ...], stop: Callable[[], None]
    ) -> list[object]:
        """Each flow in a task of its own; the first failure cancels the rest."""
        tasks = [asyncio.ensure_future(self.run(flow)) for flow in flows]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            await _cancel_all(tasks, stop)  # this task was cancelled
            raise
        failed = [t for t in tasks if t in done and not t.cancelled() and t.exception()]
        if failed:
            await _cancel_all(tasks, stop)
            raise cast(BaseException, failed[0].exception())
        return [task.result() for task in tasks]

    async def _call(self, call: effects.Call) -> object:
        async def send(metadata: Metadata | None) -> object:
            with converted_rpc_errors():
                method = getattr(self._stub, call.method)
                return await method(call.request, timeout=call.timeout, metadata=metadata)

        return await self._auth.call(send)

    async def _put_source(self, effect: effects.PutSource) -> ObjectInfo | UploadStatus:
        source, content_type, size = effect.source, effect.content_type, effect.size
        if isinstance(source, str | os.PathLike):
            file, content_type, size = await asyncio.to_thread(
                _files.open_path, os.fspath(source), content_type, size
            )
            try:
                stream = PutStream(effect.spec(content_type, size), self._chunk_size)
                blocks = _files.iter_blocks(file, self._chunk_size)
                return await self._put(stream, _thread_requests(stream, blocks), effect.progress)
            finally:
                await asyncio.to_thread(file.close)
        source_stream, size = source_blocks(source, self._chunk_size, size)
        stream = PutStream(effect.spec(content_type, size), self._chunk_size)
        if isinstance(source_stream, Iterator):
            requests = _thread_requests(stream, source_stream)
        else:
            requests = _checksummed_requests(stream, source_stream)
        return await self._put(stream, requests, effect.progress)

    async def _put(
        self,
        stream: effects.UploadStream,
        requests: AsyncIterator[list[PutMessage]],
        progress: Progress | None,
    ) -> ObjectInfo | UploadStatus:
        metadata = await self._auth.metadata()
        first = stream.start()
        if first is None:  # the spec goes with the data: a small object
            batches, ended = await peek(requests)
            messages = [message for batch in batches for message in batch]
            if ended and len(messages) == 1:
                # One message in all: a unary call, the message and the
                # half-close sent in one batch of Core operations.
                with converted_rpc_errors():
                    response = await self._put_one(messages[0], metadata=metadata)
                if progress is not None:
                    progress(stream.size)
                return stream.object_info(response)
            requests = chain(batches, requests)
        call: PutCall = self._put_method(None, metadata=metadata)
        try:
            with converted_rpc_errors():
                response = await send(call, stream, first, requests, progress)
        except BaseException:
            # The gateway discards a cancelled upload; finish_write was never sent.
            call.cancel()
            raise
        return stream.object_info(response)


# ---------------------------------------------------------------- byte sources


def source_blocks(
    source: object, block_size: int, size: int | None
) -> tuple[Iterator[bytes] | AsyncIterable[bytes], int | None]:
    """Blocks from anything but a path, and the size when that implies one.

    An iterator (bytes, a binary file) is read in worker threads (see
    _thread_requests). Any other sync iterable is iterated on the event
    loop: fine for data in memory; a source that blocks should come as an
    async iterable or a file.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _as_async([bytes(source)]), len(source) if size is None else size
    if isinstance(source, AsyncIterable):
        return source, size
    if hasattr(source, "read"):
        return _files.iter_blocks(cast(BinaryReader, source), block_size), size
    if isinstance(source, Iterable):
        return _as_async(source), size
    raise TypeError(f"cannot upload from {type(source).__name__}")


async def _cancel_all(tasks: list[asyncio.Task[object]], stop: Callable[[], None]) -> None:
    """Cancel `tasks` and wait until each has ended (their flows close their
    Gets on the way out)."""
    stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _as_async(blocks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


async def _thread_requests(
    stream: effects.UploadStream, blocks: Iterator[bytes]
) -> AsyncIterator[list[PutMessage]]:
    """All the requests after the first for `blocks`, whose next() may block
    (file reads): each block is read and checksummed in one worker-thread
    hop, off the loop, with the next block read ahead so that the last
    message is made in the last block's hop."""

    def requests_for(block: bytes) -> tuple[list[PutMessage], bytes | None]:
        requests = stream.feed(block)
        following = next(blocks, None)
        if following is None:
            requests.append(stream.finish())
        return requests, following

    block = await asyncio.to_thread(next, blocks, None)
    if block is None:
        yield [stream.finish()]  # no data: nothing to checksum
    while block is not None:
        requests, block = await asyncio.to_thread(requests_for, block)
        yield requests


async def _checksummed_requests(
    stream: effects.UploadStream, blocks: AsyncIterable[bytes]
) -> AsyncIterator[list[PutMessage]]:
    """All the requests after the first for the caller's blocks (not read
    ahead: they may come as they are made), each block checksummed in a
    worker thread unless it is small (checksumming). The last message
    holds less than a chunk of data: checksummed on the loop when native.
    """
    async for block in blocks:
        yield await checksumming(partial(stream.feed, block), len(block))
    yield [await _native_or_thread(stream.finish)]


async def _native_or_thread(work: Callable[[], _Result]) -> _Result:
    return work() if accelerated() else await asyncio.to_thread(work)

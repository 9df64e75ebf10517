"""The asyncio client's upload plumbing: async byte sources and the Put call.

Kept apart from aio.py so that AsyncClient reads like Client: the methods
there, the waiting-for-I/O details here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, TypeAlias, cast

import grpc
import grpc.aio

from storagegw import _files
from storagegw._common import BinaryReader
from storagegw._readers import checksumming
from storagegw._resumable import SegmentStream
from storagegw._streams import PutStream
from storagegw.v1 import storage_pb2

if TYPE_CHECKING:
    # grpc.aio's call classes are not subscriptable at run time.
    PutCall: TypeAlias = grpc.aio.StreamUnaryCall[storage_pb2.PutRequest, storage_pb2.PutResponse]

__all__ = ["file_blocks", "send", "source_blocks"]

_STATUS_WAIT_SECONDS = 5.0


async def file_blocks(file: BinaryReader, block_size: int) -> AsyncIterator[bytes]:
    """Read a blocking file in a worker thread, one block at a time."""
    while block := await asyncio.to_thread(_files.read_block, file, block_size):
        yield block


async def _as_async(blocks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block


def source_blocks(
    source: object, block_size: int, size: int | None
) -> tuple[AsyncIterable[bytes], int | None]:
    """Blocks from anything but a path, and the size when that implies one.

    A sync iterable is iterated on the event loop: fine for data in memory;
    a source that blocks should come as an async iterable or a file.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _as_async([bytes(source)]), len(source) if size is None else size
    if isinstance(source, AsyncIterable):
        return source, size
    if hasattr(source, "read"):
        return file_blocks(cast(BinaryReader, source), block_size), size
    if isinstance(source, Iterable):
        return _as_async(source), size
    raise TypeError(f"cannot upload from {type(source).__name__}")


async def _write(call: PutCall, request: storage_pb2.PutRequest) -> None:
    """call.write(), raising the gateway's status when it has ended the call.

    grpc.aio reports a write to a call the server has already finished (say,
    a failed precondition rejected at the first message) as INTERNAL
    "Internal error from Core"; the call's result carries the real status
    once it arrives, so wait briefly for that and raise it instead.
    """
    try:
        await call.write(request)
    except asyncio.InvalidStateError:
        # The call already ended (say, its connection broke): its status says why.
        await call
        raise
    except grpc.aio.AioRpcError as write_error:
        try:
            await asyncio.wait_for(call, _STATUS_WAIT_SECONDS)
        except grpc.aio.AioRpcError as status_error:
            raise status_error from write_error
        except TimeoutError:
            pass
        raise


async def send(
    call: PutCall,
    stream: PutStream | SegmentStream,
    blocks: AsyncIterable[bytes],
    progress: Callable[[int], None] | None,
) -> storage_pb2.PutResponse:
    """Write the whole Put stream and return the gateway's response."""
    await _write(call, stream.start())
    async for block in blocks:
        for request in await checksumming(partial(stream.feed, block)):
            await _write(call, request)
            if progress is not None:
                progress(stream.size)
    await _write(call, await checksumming(stream.finish))
    if progress is not None:
        progress(stream.size)
    await call.done_writing()
    return await call

"""The async client's Put stream: its messages written to a grpc.aio call
so that a gateway's refusal reaches the caller as the gateway sent it.

A gateway that refuses a Put early (a bucket it does not have, a failed
precondition it can check on the spec) ends the call while the client is
still writing. The write then in flight, usually waiting for flow-control
credit the gateway will never give, fails, and grpc.aio reports it as
INTERNAL "Internal error from Core" (grpc.aio _StreamRequestMixin._write
catches the failed send and calls _cython_call.set_internal_error). That
sets the call's status a second time: when grpc.aio handles the failed
send after the gateway's status, INTERNAL replaces it, and the call itself
then raises INTERNAL too (grpc/grpc#36066).

CallWriter closes that window. Each write runs in a task of its own, and
the call's done callback cancels it: grpc.aio runs done callbacks as it
sets the call's first status, synchronously, before the failed send can
be handled, and a write cancelled at that point leaves the status alone
(_write's CancelledError branch cancels the call only when it has not
ended). Awaiting the call then gives the gateway's status. When grpc.aio
handles the failed send first, its INTERNAL is the first status; the
gateway's status replaces it when it arrives, and awaiting the call waits
for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import grpc.aio

from storagegw import _effects as effects
from storagegw._types import Progress
from storagegw._wire import PutMessage
from storagegw.v1 import storage_pb2

if TYPE_CHECKING:
    # grpc.aio's call classes are not subscriptable at run time.
    PutCall: TypeAlias = grpc.aio.StreamUnaryCall[PutMessage, storage_pb2.PutResponse]

__all__ = ["CallWriter", "chain", "peek", "send"]

# How long a write that failed waits for the call's status to say why
# (Core delivers it at once; this only bounds a wait that should not be).
_STATUS_WAIT_SECONDS = 5.0


class CallWriter:
    """Writes to a grpc.aio stream-unary call; a write or half-close the
    call's end interrupts raises the call's status (see the module's doc)."""

    def __init__(self, call: PutCall) -> None:
        self._call = call
        self._pending: asyncio.Task[None] | None = None
        call.add_done_callback(self._call_ended)

    def _call_ended(self, call: object) -> None:
        # Runs inside grpc.aio's setting of the first status: the pending
        # write, cancelled now, never reaches its set_internal_error.
        if self._pending is not None:
            self._pending.cancel()

    async def write(self, request: PutMessage) -> None:
        await self._until_call_ends(self._call.write(request))

    async def done_writing(self) -> None:
        await self._until_call_ends(self._call.done_writing())

    async def _until_call_ends(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(step)
        self._pending = task
        try:
            await asyncio.wait((task,))
        except BaseException:
            task.cancel()  # this task was cancelled: the write goes with it
            raise
        finally:
            self._pending = None
        if task.cancelled():
            await self._raise_status(None)  # the call ended first
        error = task.exception()
        if error is None:
            return
        if isinstance(error, grpc.aio.AioRpcError | asyncio.InvalidStateError) or self._call.done():
            # The call has ended, or grpc.aio's INTERNAL stands in for its
            # status until that arrives: raise the status.
            await self._raise_status(error)
        raise error

    async def _raise_status(self, step_error: BaseException | None) -> NoReturn:
        try:
            await asyncio.wait_for(self._call, _STATUS_WAIT_SECONDS)
        except grpc.aio.AioRpcError as status_error:
            raise status_error from step_error
        except TimeoutError:
            pass
        if step_error is not None:
            raise step_error
        # The call ended well before its last message: not a gateway's Put.
        raise asyncio.InvalidStateError("the Put call ended before all of its messages were sent")


async def send(
    call: PutCall,
    stream: effects.UploadStream,
    first: PutMessage | None,
    requests: AsyncIterator[list[PutMessage]],
    progress: Progress | None,
) -> storage_pb2.PutResponse:
    """Write the whole Put stream and return the gateway's response.

    `first` is the spec message (None: the spec goes with the data);
    `requests` the messages after it, the last one included. The spec goes
    out before any data is read: a gateway that refuses it (a failed
    precondition, an unknown bucket) ends the call, and the write or
    half-close under way then raises the gateway's status (CallWriter).
    """
    writer = CallWriter(call)
    if first is not None:
        await writer.write(first)
    async for batch in requests:
        for request in batch:
            await writer.write(request)
            if progress is not None:
                progress(stream.size)
    await writer.done_writing()
    return await call


async def peek(
    requests: AsyncIterator[list[PutMessage]],
) -> tuple[list[list[PutMessage]], bool]:
    """The batches of requests up to the second message, and whether that
    was all of them (the rest is left in requests)."""
    batches: list[list[PutMessage]] = []
    while sum(len(batch) for batch in batches) < 2:
        batch = await anext(requests, None)
        if batch is None:
            return batches, True
        batches.append(batch)
    return batches, False


async def chain(
    batches: list[list[PutMessage]], requests: AsyncIterator[list[PutMessage]]
) -> AsyncIterator[list[PutMessage]]:
    for batch in batches:
        yield batch
    async for batch in requests:
        yield batch

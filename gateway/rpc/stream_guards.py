"""The gateway's stream limits (gateway.core.stream_limits) applied to gRPC's
streaming handlers, which the interceptor wraps with these:

- guard_put admits a client-streaming call (Put), lets it draw on the byte
  budget and ends it with STREAM_IDLE_TIMEOUT when its client sends nothing
  for the idle timeout;
- guard_get admits a server-streaming call (Get); send_responses, around it,
  writes its responses and flags a client that takes none for the idle
  timeout, which ends the call with STREAM_IDLE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import ServicerContext

from gateway.core.stream_limits import StreamLimits, get_idle, put_idle

Context = ServicerContext[Any, Any]

# Set by send_responses for its call's task only: its client took nothing for
# the idle timeout.
_stalled: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "get_stalled", default=None
)


class _IdleTimeoutRequests:
    """A Put stream's messages, ended with STREAM_IDLE_TIMEOUT when the client
    sends none for timeout seconds. Only the wait for the client counts: time
    the gateway itself spends (writing, waiting for budget) does not.

    Read with context.read() rather than through gRPC's request iterator,
    which keeps the last message (and its chunk) while it waits for the next.
    """

    def __init__(self, context: Context, timeout: float) -> None:
        self._context = context
        self._timeout = timeout

    def __aiter__(self) -> _IdleTimeoutRequests:
        return self

    async def __anext__(self) -> Any:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that lands as the read completes (an AbortUpload
        # cancelling the reading of a busy stream would then be lost).
        try:
            async with asyncio.timeout(self._timeout):
                message = await self._context.read()
        except TimeoutError:
            raise put_idle(idle_timeout_s=self._timeout) from None
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
            raise StopAsyncIteration
        return message


def guard_put(
    limits: StreamLimits, behavior: Callable[..., Awaitable[Any]]
) -> Callable[[AsyncIterator[Any], Context], Awaitable[Any]]:
    """A client-streaming handler, admitted and with the idle timeout."""

    async def guarded(grpc_iterator: AsyncIterator[Any], context: Context) -> Any:
        # grpc_iterator is left unused: messages are read from context.
        with limits.serving():
            return await behavior(_IdleTimeoutRequests(context, limits.idle_timeout), context)

    return guarded


def guard_get(
    limits: StreamLimits, behavior: Callable[..., AsyncIterator[Any]]
) -> Callable[[Any, Context], AsyncIterator[Any]]:
    """A server-streaming handler, admitted; ended at its pending yield
    when send_responses finds its client idle."""

    async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
        stalled = _stalled.get()
        with limits.admitted():
            responses = behavior(request, context)
            try:
                async for response in responses:
                    yield response
                    if stalled is not None and stalled.is_set():
                        break
            finally:
                # Closes the reader before the status is sent: the status
                # waits behind the data the client is not taking.
                await responses.aclose()  # type: ignore[attr-defined]
        if stalled is not None and stalled.is_set():
            raise get_idle(idle_timeout_s=limits.idle_timeout)

    return guarded


def send_responses(
    limits: StreamLimits, handler: Callable[[Any, Context], AsyncIterator[Any]]
) -> Callable[[Any, Context], Awaitable[None]]:
    """Serve a server-streaming handler by writing its responses with
    context.write, which waits while gRPC's flow control holds the data.
    When the client takes nothing for idle_timeout, the handler is asked
    for its next response with the stall flagged: guard_get (inside it)
    then closes the stream's reader and raises STREAM_IDLE_TIMEOUT, which
    the handler reports and logs like any other error."""

    async def serve(request: Any, context: Context) -> None:
        stalled = asyncio.Event()
        _stalled.set(stalled)  # this call's task only
        responses = handler(request, context)
        try:
            async for response in responses:
                try:
                    async with asyncio.timeout(limits.idle_timeout):
                        await context.write(response)
                except TimeoutError:
                    stalled.set()
        finally:
            await responses.aclose()  # type: ignore[attr-defined]

    return serve

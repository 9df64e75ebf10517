"""Limits on the gRPC Put and Get streams, applied by the interceptor.

What a client can make the gateway hold is bounded by settings, not by how
the client behaves:

- at most max_streams Put and Get streams are served at once; one more is
  refused before any of its data is read (TOO_MANY_STREAMS, with a retry
  hint), so an idle crowd cannot pile up temp files and buffers;
- a Put stream that sends no message for idle_timeout, or a Get stream whose
  client takes no message for that long, is ended (STREAM_IDLE_TIMEOUT): its
  temp file or reader and its buffers are released at once;
- the chunks being hashed and written (gateway.core.ingest) draw on one byte
  budget shared by all streams; a stream over it waits, and while it waits it
  reads nothing more, so gRPC's flow control holds its client back;
- once no stream is left, freed memory is handed back to the OS (glibc keeps
  it in its arenas otherwise; see gateway.core.tuning).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from grpc.aio import ServicerContext

from gateway.core import tuning
from gateway.domain.errors import GatewayError, Reason

# Seconds a refused client should wait before trying again: streams of
# well-behaved clients end within seconds, idle ones within idle_timeout.
RETRY_AFTER_S = 1
# How long the gateway must have stayed without streams before it trims.
TRIM_DELAY_S = 1.0

Context = ServicerContext[Any, Any]


class BufferBudget:
    """Bytes that streams hold in flight, against a limit shared by all.

    acquire() waits while the limit would be exceeded; waiters are served in
    order, so a large chunk is not overtaken for ever by small ones. A chunk
    larger than the whole budget waits until it is the only one in flight.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most ever held at once
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.limit is None or self.used == 0 or self.used + size <= self.limit

    async def acquire(self, size: int) -> None:
        if not self._waiting and self._fits(size):
            self._take(size)
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as this call was cancelled
            else:
                self._waiting.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, waiter = self._waiting.popleft()
            if not waiter.done():
                self._take(size)
                waiter.set_result(None)

    def _take(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)


_UNBOUNDED = BufferBudget(None)
_budget: contextvars.ContextVar[BufferBudget] = contextvars.ContextVar(
    "stream_budget", default=_UNBOUNDED
)


def current_budget() -> BufferBudget:
    """The byte budget of the stream being served (unbounded outside one)."""
    return _budget.get()


def too_many_streams(limit: int) -> GatewayError:
    return GatewayError(
        Reason.TOO_MANY_STREAMS,
        f"the gateway is serving its limit of {limit} Put and Get streams "
        f"(GATEWAY_MAX_STREAMS); retry in {RETRY_AFTER_S} s",
        limit=limit,
        retry_after_s=RETRY_AFTER_S,
    )


def put_idle(timeout: float) -> GatewayError:
    return GatewayError(
        Reason.STREAM_IDLE_TIMEOUT,
        f"no message from the client for {timeout:g} s (GATEWAY_STREAM_IDLE_TIMEOUT): "
        "the stream was ended and this stream's data discarded (a resumable upload keeps "
        "what was persisted)",
        idle_timeout_s=f"{timeout:g}",
    )


def get_idle(timeout: float) -> GatewayError:
    return GatewayError(
        Reason.STREAM_IDLE_TIMEOUT,
        f"the client took no message for {timeout:g} s (GATEWAY_STREAM_IDLE_TIMEOUT): "
        "the download was ended",
        idle_timeout_s=f"{timeout:g}",
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
            raise put_idle(self._timeout) from None
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
            raise StopAsyncIteration
        return message


class StreamLimits:
    """One gateway's stream limits (see the module's docstring)."""

    def __init__(self, max_streams: int, idle_timeout: float, max_buffered_bytes: int) -> None:
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        self.budget = BufferBudget(max_buffered_bytes)
        self.active = 0
        self._trim: asyncio.TimerHandle | None = None
        self._trimming: asyncio.Future[bool] | None = None

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """One stream served outside gRPC (a signed-URL GET, PUT or POST):
        admitted against the same cap, drawing on the same byte budget."""
        with self._admitted():
            _budget.set(self.budget)
            yield

    @contextlib.contextmanager
    def _admitted(self) -> Iterator[None]:
        if self.active >= self.max_streams:
            raise too_many_streams(self.max_streams)
        loop = asyncio.get_running_loop()
        self.active += 1
        if self._trim is not None:
            self._trim.cancel()
            self._trim = None
        try:
            yield
        finally:
            self.active -= 1
            if self.active == 0 and not loop.is_closed():
                self._trim = loop.call_later(TRIM_DELAY_S, self._start_trim)

    def _start_trim(self) -> None:
        self._trim = None
        if self.active == 0 and (self._trimming is None or self._trimming.done()):
            # malloc_trim walks the whole heap: off the event loop.
            self._trimming = asyncio.ensure_future(asyncio.to_thread(tuning.release_free_memory))

    def guard_put(
        self, behavior: Callable[..., Awaitable[Any]]
    ) -> Callable[[AsyncIterator[Any], Context], Awaitable[Any]]:
        """A client-streaming handler, admitted and with the idle timeout."""

        async def guarded(grpc_iterator: AsyncIterator[Any], context: Context) -> Any:
            # grpc_iterator is left unused: messages are read from context.
            with self._admitted():
                # Each call runs in its own task, whose context ends with it.
                _budget.set(self.budget)
                return await behavior(_IdleTimeoutRequests(context, self.idle_timeout), context)

        return guarded

    def guard_get(
        self, behavior: Callable[..., AsyncIterator[Any]]
    ) -> Callable[[Any, Context], AsyncIterator[Any]]:
        """A server-streaming handler, admitted; ended at its pending yield
        when send_responses finds its client idle."""

        async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
            stalled = _stalled.get()
            with self._admitted():
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
                raise get_idle(self.idle_timeout)

        return guarded

    def send_responses(
        self, handler: Callable[[Any, Context], AsyncIterator[Any]]
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
                        async with asyncio.timeout(self.idle_timeout):
                            await context.write(response)
                    except TimeoutError:
                        stalled.set()
            finally:
                await responses.aclose()  # type: ignore[attr-defined]

        return serve


_stalled: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "get_stalled", default=None
)

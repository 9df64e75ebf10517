"""Limits on the streams the gateway serves, whatever the front end (the gRPC
Put and Get streams through gateway.rpc.stream_guards, the signed-URL GET,
PUT and POST through gateway.http.server).

What a client can make the gateway hold is bounded by settings, not by how
the client behaves:

- at most max_streams streams are served at once; one more is refused
  before any of its data is read (TOO_MANY_STREAMS, with a retry hint), so an
  idle crowd cannot pile up temp files and buffers;
- a Put stream that sends no message for idle_timeout, or a Get stream whose
  client takes no message for that long, is ended (STREAM_IDLE_TIMEOUT): its
  temp file or reader and its buffers are released at once;
- the chunks being hashed and written (gateway.core.pump) draw on one byte
  budget shared by all streams; a stream over it waits, and while it waits it
  reads nothing more, so the client is held back (gRPC's flow control, TCP's);
- once no stream is left, freed memory is handed back to the OS (glibc keeps
  it in its arenas otherwise; see gateway.core.tuning).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Iterator

from gateway.core import tuning
from gateway.domain.errors import ErrorTemplate, Reason

# Seconds a refused client should wait before trying again: streams of
# well-behaved clients end within seconds, idle ones within idle_timeout.
RETRY_AFTER_S = 1
# How long the gateway must have stayed without streams before it trims.
TRIM_DELAY_S = 1.0


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


too_many_streams = ErrorTemplate(
    Reason.TOO_MANY_STREAMS,
    "the gateway is serving its limit of {limit} Put and Get streams "
    "(GATEWAY_MAX_STREAMS); retry in {retry_after_s} s",
    fixed={"retry_after_s": RETRY_AFTER_S},
)
put_idle = ErrorTemplate(
    Reason.STREAM_IDLE_TIMEOUT,
    "no message from the client for {idle_timeout_s:g} s (GATEWAY_STREAM_IDLE_TIMEOUT): "
    "the stream was ended and this stream's data discarded (a resumable upload keeps "
    "what was persisted)",
)
get_idle = ErrorTemplate(
    Reason.STREAM_IDLE_TIMEOUT,
    "the client took no message for {idle_timeout_s:g} s (GATEWAY_STREAM_IDLE_TIMEOUT): "
    "the download was ended",
)


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
        """One stream (a gRPC Put, a signed-URL GET, PUT or POST), admitted
        against the cap and drawing on the gateway's byte budget."""
        with self.admitted():
            # Each stream runs in its own task, whose context ends with it.
            _budget.set(self.budget)
            yield

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """One stream counted against max_streams while it is served
        (TOO_MANY_STREAMS when the gateway serves its limit already)."""
        if self.active >= self.max_streams:
            raise too_many_streams(limit=self.max_streams)
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

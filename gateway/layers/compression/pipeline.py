"""Frames worked on in worker threads (compressed, or decompressed), a few at
a time, taken back in the order they were started: what the compressing
writers (writer.py, upload_writer.py) and the reader (reader.py) share, so
that the loop keeps receiving or sending while zstd works."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

# Frames at work at once (a writer may start one more before it takes the
# oldest back). The cores are shared with the rest of the gateway: two keep
# zstd off a Put's and a Get's critical path.
IN_FLIGHT = 2

P = ParamSpec("P")
T = TypeVar("T")


class ThreadPipeline(Generic[T]):
    """Results of calls run in worker threads, oldest first."""

    def __init__(self) -> None:
        self._running: deque[asyncio.Future[T]] = deque()

    def __len__(self) -> int:
        return len(self._running)

    def start(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
        self._running.append(asyncio.ensure_future(asyncio.to_thread(work, *args, **kwargs)))

    async def next(self) -> T:
        """The oldest call's result (its exception, raised)."""
        return await self._running.popleft()

    def cancel(self) -> None:
        """Drop every call at work (a thread already running one finishes it,
        its result unused)."""
        for future in self._running:
            future.cancel()
        self._running.clear()

"""A remote driver's client context (S3's session and client, GCS's client and
bucket), opened on first use rather than at start, so that a gateway starts
while its storage is away and says so per request instead.

Opened once however many requests ask at the same time, and refused once the
driver is closed; closing waits for the driver's background tasks first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.domain.errors import backend_unavailable

Context = TypeVar("Context")


class LazyContext(Generic[Context]):
    def __init__(
        self,
        kind: str,
        open_context: Callable[[], Awaitable[Context]],
        background: set[asyncio.Task[None]],
    ) -> None:
        self._kind = kind
        self._open = open_context
        self._background = background
        self._lock = asyncio.Lock()
        self._context: Context | None = None
        self._closed = False

    async def get(self) -> Context:
        """The context, opened now if it is not yet; BACKEND_UNAVAILABLE once
        closed, or whatever opening it raised."""
        if self._context is not None:
            return self._context
        async with self._lock:
            if self._closed:
                raise backend_unavailable(backend=self._kind, detail="the backend is closed")
            if self._context is None:
                self._context = await self._open()
            return self._context

    async def close(self) -> Context | None:
        """Refuse further use and wait for the background tasks; the context,
        if one was opened, for the driver to release."""
        async with self._lock:
            self._closed = True
            if self._background:
                await asyncio.wait(set(self._background))
            context, self._context = self._context, None
        return context

"""What the remote drivers (S3, GCS) share as backends: their settings, the
client context opened on first use (lazy_context.py) and the background tasks
closing it waits for, listing through that context, and the health probe.

Each driver opens its own context, and releases its own client in close()."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from gateway.backends.shared.lazy_context import LazyContext
from gateway.domain.errors import GatewayError, backend_unavailable
from gateway.domain.objects import ListPage, ListQuery


class RemoteContext(Protocol):
    """What the backend asks of a driver's context itself."""

    async def check_bucket(self) -> None:
        """BUCKET_NOT_FOUND (or another GatewayError) unless the bucket can be read."""


Context = TypeVar("Context", bound=RemoteContext)
Settings = TypeVar("Settings")


class RemoteBackend(abc.ABC, Generic[Context, Settings]):
    """The base of a remote driver's backend; list_page pages a listing
    against the driver's context."""

    def __init__(
        self,
        kind: str,
        settings: Settings,
        list_page: Callable[[Context, ListQuery], Awaitable[ListPage]],
    ) -> None:
        self._kind = kind
        self._settings = settings
        self._list_page = list_page
        # Tasks that writers, uploads and copies leave running; closing waits for them.
        self._background: set[asyncio.Task[None]] = set()
        self._contexts = LazyContext(kind, self._open_context, self._background)
        self._context = self._contexts.get

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def settings(self) -> Settings:
        return self._settings

    @abc.abstractmethod
    async def _open_context(self) -> Context:
        """A new client and the context around it (on first use only)."""

    async def list(self, query: ListQuery) -> ListPage:
        return await self._list_page(await self._context(), query)

    async def probe(self) -> None:
        """BACKEND_UNAVAILABLE, saying why, unless the bucket can be reached
        and read."""
        try:
            ctx = await self._context()
            await ctx.check_bucket()
        except GatewayError as error:
            raise backend_unavailable(backend=self._kind, detail=error.message) from error

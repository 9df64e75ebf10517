"""What the remote drivers (S3, GCS) share as backends: their settings, the
client context opened on first use (lazy_context.py) and the background tasks
closing it waits for, listing through that context, the health probe, and
the checks of settings a backend is built with.

Each driver opens its own context, and releases its own client in close()."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gateway.backends.shared.lazy_context import LazyContext
from gateway.domain.errors import GatewayError, backend_unavailable
from gateway.domain.objects import ListPage, ListQuery


class RemoteContext(Protocol):
    """What the backend asks of a driver's context itself."""

    async def check_bucket(self) -> None:
        """BUCKET_NOT_FOUND (or another GatewayError) unless the bucket can be read."""


@dataclass(frozen=True, slots=True)
class SettingsChecks:
    """A driver's rules for its settings beyond the bucket, as values; the
    backend checks them when it is built, since settings may be built in
    code, not only read by the configuration (which checks them too)."""

    size_fits: bool  # whether the transfer unit (part, chunk) is one the store takes
    size_rule: str  # the rule it breaks otherwise: "part_size must be ..."
    workers: tuple[str, int]  # the setting for how many at once, and its value


class RemoteSettings(Protocol):
    """What the backend asks of a driver's settings itself."""

    @property
    def bucket(self) -> str:
        """The store's bucket."""

    def checks(self) -> SettingsChecks:
        """The driver's rules, applied to these settings (beside the rules
        the configuration checks when it reads them)."""


Context = TypeVar("Context", bound=RemoteContext)
Settings = TypeVar("Settings", bound=RemoteSettings)


class RemoteBackend(abc.ABC, Generic[Context, Settings]):
    """The base of a remote driver's backend; list_page pages a listing
    against the driver's context; ValueError, saying what, unless the
    settings meet their checks() and name a bucket."""

    def __init__(
        self,
        kind: str,
        settings: Settings,
        list_page: Callable[[Context, ListQuery], Awaitable[ListPage]],
    ) -> None:
        store = kind.upper()
        checks = settings.checks()
        if not settings.bucket:
            raise ValueError(f"{store} bucket name is required")
        if not checks.size_fits:
            raise ValueError(f"{store} {checks.size_rule}")
        workers, count = checks.workers
        if count < 1:
            raise ValueError(f"{store} {workers} must be >= 1")
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

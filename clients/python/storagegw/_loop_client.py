"""The AsyncClient of the running event loop, made on first use, for the
wrappers that may be used from more than one loop (the fsspec file system,
svc-infra's storage backend): a grpc.aio channel belongs to the loop that
made it, so a call from another loop gets a client of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from storagegw.aio import AsyncClient

__all__ = ["LoopClient"]


class LoopClient:
    """An AsyncClient(target, bucket=bucket, **options) per event loop, the
    last one made kept until close()."""

    def __init__(self, target: str, bucket: str, options: Mapping[str, Any]) -> None:
        self._target = target
        self._bucket = bucket
        self._options = dict(options)
        self._client: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> AsyncClient:
        """The running loop's client: the one made last if made in this
        loop, else a new one."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = AsyncClient(self._target, bucket=self._bucket, **self._options)
            self._loop = loop
        return self._client

    def open_in(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Whether a client made in `loop` is open."""
        return self._client is not None and self._loop is loop

    async def close(self) -> None:
        """Close the client made last, if any; a later get() makes another."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.close()

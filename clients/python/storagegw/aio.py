"""The asyncio client: the same methods as storagegw.Client, as coroutines.

    async with storagegw.AsyncClient("127.0.0.1:50051") as client:
        await client.put_file("big.iso", "big.iso")
        async for info in client.list("2024/"):
            print(info.key)

Create it inside the event loop that uses it (grpc.aio channels belong to
one loop). File reads and writes run in worker threads, as does the
checksumming of uploaded files and of downloaded chunks (all but the
smallest; download_file checks and writes each chunk in one hop), so the
loop stays free; data already in memory is checksummed on
the loop when the native google_crc32c is there (about 1 ms per MiB).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

import grpc
import grpc.aio

from storagegw._aio_transport import AsyncTransport
from storagegw._common import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TARGET,
    AsyncClosedOnExit,
    AsyncPutSource,
)
from storagegw._credentials import (
    AsyncCallAuth,
    AsyncTokenProvider,
    TlsConfig,
)
from storagegw._effects import Flow, OpenRead
from storagegw._methods import Methods
from storagegw._readers import AsyncObjectReader
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy

__all__ = ["AsyncClient", "AsyncObjectReader", "AsyncPutSource"]

_Result = TypeVar("_Result")


class AsyncClient(Methods, AsyncClosedOnExit):
    """A grpc.aio connection to a storage gateway; arguments as for Client,
    but token_provider may also be an async function (a sync one runs on the
    event loop, so it should return a cached token at once)."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        bucket: str = "",
        timeout: float | timedelta | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        channel: grpc.aio.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        retry: RetryPolicy | None = None,
        resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD,
        tls: TlsConfig | None = None,
        token: str | None = None,
        token_provider: AsyncTokenProvider | None = None,
        load_balancing: str | None = None,
        verify_sha256: bool = False,
    ) -> None:
        super().__init__(
            target, bucket, timeout, chunk_size, retry, resumable_threshold, verify_sha256
        )
        auth = AsyncCallAuth(token, token_provider)
        plan = self._channel_plan(channel, credentials, tls, load_balancing, auth.sends_token)
        self._transport = AsyncTransport(plan, self.chunk_size, auth)

    async def close(self) -> None:
        await self._transport.close()

    async def _close_on_exit(self) -> None:
        await self.close()

    async def _run(self, flow: Flow[_Result]) -> _Result:
        """Run an operation's flow: the operations written once in
        _operations.py and _transfers.py (put_bytes, head, ...), named in
        _methods.Methods, are this client's, as coroutines, by it."""
        return await self._transport.run(flow)

    def _open(self, read: OpenRead) -> AsyncObjectReader:
        """The reader `open` returns (see _transfers.py), not yet started."""
        return self._transport.reader(read)

"""The asyncio client: the same methods as storagegw.Client, as coroutines.

    async with storagegw.AsyncClient("127.0.0.1:50051") as client:
        await client.put_file("big.iso", "big.iso")
        async for info in client.list("2024/"):
            print(info.key)

Create it inside the event loop that uses it (grpc.aio channels belong to
one loop). File reads and writes run in worker threads, as does checksumming
when the native google_crc32c accelerator is absent, so the loop stays free.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import TypeVar

import grpc
import grpc.aio

from storagegw import _operations as operations
from storagegw._aio_transport import AsyncTransport
from storagegw._base import ClientBase
from storagegw._common import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TARGET,
    AsyncClosedOnExit,
    BinaryReader,
)
from storagegw._credentials import (
    AsyncCallAuth,
    AsyncTokenProvider,
    TlsConfig,
    channel_credentials,
)
from storagegw._effects import Flow
from storagegw._readers import AsyncObjectReader
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy
from storagegw._types import ObjectInfo, Progress, UploadSession

__all__ = ["AsyncClient", "AsyncObjectReader", "AsyncPutSource"]

AsyncPutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes] | AsyncIterable[bytes]

_Result = TypeVar("_Result")


class AsyncClient(ClientBase, AsyncClosedOnExit):
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
    ) -> None:
        super().__init__(target, bucket, timeout, chunk_size, retry, resumable_threshold)
        auth = AsyncCallAuth(token, token_provider)
        credentials = channel_credentials(target, tls, credentials, channel, auth.sends_token)
        self._transport = AsyncTransport(target, channel, credentials, self.chunk_size, auth)

    async def close(self) -> None:
        await self._transport.close()

    async def _close_on_exit(self) -> None:
        await self.close()

    async def _run(self, flow: Flow[_Result]) -> _Result:
        """Run an operation's flow: the operations written once in
        _operations.py (put_bytes, head, ...) are this client's, as
        coroutines, by it."""
        return await self._transport.run(flow)

    # ------------------------------------------------------------ uploads

    put_bytes = operations.put_bytes

    async def put_file(
        self,
        key: str,
        source: AsyncPutSource,
        *,
        bucket: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        size: int | None = None,
        progress: Progress | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
        resumable: bool | None = None,
        retry: RetryPolicy | None = None,
        keep_upload: bool = False,
        on_upload_start: Callable[[UploadSession], None] | None = None,
    ) -> ObjectInfo:
        """Store an object from a path, a binary file, or a (async) iterable of bytes.

        Files are read in a worker thread; a sync iterable is iterated on the
        event loop, so pass an async iterable for a source that blocks.
        Resumable uploads, retries and keep_upload as for Client.put_file; a
        cancelled task aborts the upload (shielded, best effort) unless
        keep_upload=True.
        """
        return await self._run(
            self._put_flow(
                key,
                source,
                bucket,
                content_type,
                metadata,
                size,
                progress,
                if_none_match,
                if_match,
                if_generation_match,
                resumable,
                retry,
                keep_upload,
                on_upload_start,
            )
        )

    start_upload = operations.start_upload
    query_upload = operations.query_upload
    abort_upload = operations.abort_upload

    async def resume_upload(
        self,
        upload_id: str,
        source: AsyncPutSource,
        *,
        progress: Progress | None = None,
        retry: RetryPolicy | None = None,
    ) -> ObjectInfo:
        """Continue an upload from its persisted size, as Client.resume_upload does."""
        return await self._run(self._resume_upload_flow(upload_id, source, progress, retry))

    # ------------------------------------------------------------ downloads

    def open(
        self,
        key: str,
        *,
        bucket: str | None = None,
        offset: int = 0,
        length: int | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> AsyncObjectReader:
        """A reader for an object or range; use `async with` or `await`."""
        request = self._get_request(
            key, bucket, offset, length, if_match, if_none_match, if_generation_match
        )
        return self._transport.reader(request, key)

    get_bytes = operations.get_bytes
    download_file = operations.download_file

    # ------------------------------------------------------------ metadata

    head = operations.head
    exists = operations.exists
    delete = operations.delete

    list_pages = operations.list_pages
    list = operations.list
    sign_url = operations.sign_url
    copy = operations.copy

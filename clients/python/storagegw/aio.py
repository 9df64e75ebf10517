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

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc
import grpc.aio

from storagegw import _aio_resumable, _aio_upload, _common, _files, _resumable
from storagegw._common import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TARGET,
    BinaryReader,
    converted_rpc_errors,
)
from storagegw._readers import AsyncObjectReader
from storagegw._retry import RetryPolicy
from storagegw._streams import PutStream
from storagegw._types import ListPage, ObjectInfo, SignedUrl, UploadSession, UploadStatus
from storagegw.errors import BucketNotFound, NotFound
from storagegw.v1 import storage_pb2, storage_pb2_grpc

if TYPE_CHECKING:
    from storagegw.v1.storage_pb2_grpc import StorageServiceAsyncStub

__all__ = ["AsyncClient", "AsyncObjectReader", "AsyncPutSource"]

AsyncPutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes] | AsyncIterable[bytes]
Progress = Callable[[int], None]


class AsyncClient:
    """A grpc.aio connection to a storage gateway; arguments as for Client."""

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
        resumable_threshold: int = _resumable.DEFAULT_RESUMABLE_THRESHOLD,
    ) -> None:
        self.target = target
        self.retry = retry if retry is not None else RetryPolicy()
        self.resumable_threshold = resumable_threshold
        self.bucket = bucket
        self.timeout = _common.seconds(timeout)
        self.chunk_size = _common.check_chunk_size(chunk_size)
        self._owns_channel = channel is None
        if channel is None:
            options = _common.channel_options()
            if credentials is None:
                channel = grpc.aio.insecure_channel(target, options)
            else:
                channel = grpc.aio.secure_channel(target, credentials, options)
        self._channel = channel
        self._stub: StorageServiceAsyncStub = storage_pb2_grpc.StorageServiceStub(channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_channel:
            await self._channel.close(None)

    def _bucket(self, bucket: str | None) -> str:
        return self.bucket if bucket is None else bucket

    # ------------------------------------------------------------ uploads

    async def put_bytes(
        self,
        key: str,
        data: bytes | bytearray | memoryview,
        *,
        bucket: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        """Store `data` under `key`. if_none_match="*" only creates."""
        return await self.put_file(
            key,
            [bytes(data)],
            bucket=bucket,
            content_type=content_type,
            metadata=metadata,
            size=len(data),
            if_none_match=if_none_match,
            if_match=if_match,
            if_generation_match=if_generation_match,
        )

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
        conditions = _common.preconditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        if await asyncio.to_thread(
            _resumable.wants_resumable, resumable, source, size, self.resumable_threshold
        ):
            upload_source, opened_file, content_type, size = await asyncio.to_thread(
                _resumable.open_upload_source, source, self.chunk_size, content_type, size
            )
            try:
                put_spec = _common.put_spec(
                    self._bucket(bucket),
                    key,
                    content_type=content_type,
                    metadata=metadata,
                    size=size,
                    conditions=conditions,
                )
                return await _aio_resumable.put_resumable(
                    self,
                    put_spec,
                    upload_source,
                    retry=retry or self.retry,
                    progress=progress,
                    keep_upload=keep_upload,
                    on_start=on_upload_start,
                )
            finally:
                if opened_file is not None:
                    opened_file.close()

        def spec(content_type: str | None, size: int | None) -> storage_pb2.PutSpec:
            return _common.put_spec(
                self._bucket(bucket),
                key,
                content_type=content_type,
                metadata=metadata,
                size=size,
                conditions=conditions,
            )

        if isinstance(source, str | os.PathLike):
            file, content_type, size = await asyncio.to_thread(
                _files.open_path, os.fspath(source), content_type, size
            )
            try:
                file_blocks = _aio_upload.file_blocks(file, self.chunk_size)
                return await self._put(spec(content_type, size), file_blocks, progress)
            finally:
                await asyncio.to_thread(file.close)
        blocks, size = _aio_upload.source_blocks(source, self.chunk_size, size)
        return await self._put(spec(content_type, size), blocks, progress)

    async def start_upload(
        self,
        key: str,
        *,
        bucket: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        size: int | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> UploadSession:
        """Start a resumable upload, as Client.start_upload does."""
        conditions = _common.preconditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        spec = _common.put_spec(
            self._bucket(bucket),
            key,
            content_type=content_type,
            metadata=metadata,
            size=size,
            conditions=conditions,
        )
        return await _aio_resumable.start_upload(self, spec)

    async def query_upload(self, upload_id: str) -> UploadStatus:
        return await _aio_resumable.upload_status(self, upload_id)

    async def abort_upload(self, upload_id: str) -> bool:
        return await _aio_resumable.abort_upload(self, upload_id)

    async def resume_upload(
        self,
        upload_id: str,
        source: AsyncPutSource,
        *,
        progress: Progress | None = None,
        retry: RetryPolicy | None = None,
    ) -> ObjectInfo:
        """Continue an upload from its persisted size, as Client.resume_upload does."""
        upload_source, file, _, _ = await asyncio.to_thread(
            _resumable.open_upload_source, source, self.chunk_size, None, None
        )
        try:
            return await _aio_resumable.resume_upload(
                self, upload_id, upload_source, retry or self.retry, progress
            )
        finally:
            if file is not None:
                file.close()

    async def _put(
        self, put_spec: storage_pb2.PutSpec, blocks: AsyncIterable[bytes], progress: Progress | None
    ) -> ObjectInfo:
        return await self._put_stream(PutStream(put_spec, self.chunk_size), blocks, progress)

    async def _put_stream(
        self,
        stream: PutStream | _resumable.SegmentStream,
        blocks: AsyncIterable[bytes],
        progress: Progress | None,
    ) -> ObjectInfo:
        call = self._stub.Put(None)
        try:
            with converted_rpc_errors():
                response = await _aio_upload.send(call, stream, blocks, progress)
        except BaseException:
            # The gateway discards a cancelled upload; finish_write was never sent.
            call.cancel()
            raise
        return stream.object_info(response)

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
        request = _common.get_request(
            self._bucket(bucket),
            key,
            offset=offset,
            length=length,
            conditions=_common.preconditions(
                if_match=if_match,
                if_none_match=if_none_match,
                if_generation_match=if_generation_match,
            ),
        )
        return AsyncObjectReader(lambda: self._stub.Get(request), key)

    async def get_bytes(
        self,
        key: str,
        *,
        bucket: str | None = None,
        offset: int = 0,
        length: int | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> bytes:
        """The object's bytes, or a range of them, verified."""
        async with self.open(
            key,
            bucket=bucket,
            offset=offset,
            length=length,
            if_match=if_match,
            if_generation_match=if_generation_match,
        ) as reader:
            return await reader.read()

    async def download_file(
        self,
        key: str,
        dest_path: str | os.PathLike[str],
        *,
        bucket: str | None = None,
        progress: Progress | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> ObjectInfo:
        """Download to `dest_path` atomically, resuming a broken Get, as
        Client.download_file does."""
        return await _aio_resumable.download_file(
            self,
            key,
            dest_path,
            bucket=bucket,
            first_conditions=_common.preconditions(
                if_match=if_match, if_generation_match=if_generation_match
            ),
            retry=retry or self.retry,
            progress=progress,
        )

    # ------------------------------------------------------------ metadata

    async def head(
        self,
        key: str,
        *,
        bucket: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        conditions = _common.preconditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        request = _common.head_request(self._bucket(bucket), key, conditions)
        with converted_rpc_errors():
            response = await self._stub.Head(request, timeout=self.timeout)
        return ObjectInfo.from_proto(response.object)

    async def exists(self, key: str, *, bucket: str | None = None) -> bool:
        """Whether the object exists (a missing bucket still raises BucketNotFound)."""
        try:
            await self.head(key, bucket=bucket)
        except BucketNotFound:
            raise
        except NotFound:
            return False
        return True

    async def delete(
        self,
        key: str,
        *,
        bucket: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> bool:
        """Delete the object; returns whether it existed."""
        conditions = _common.preconditions(
            if_match=if_match, if_generation_match=if_generation_match
        )
        request = _common.delete_request(self._bucket(bucket), key, conditions)
        with converted_rpc_errors():
            response = await self._stub.Delete(request, timeout=self.timeout)
        return response.existed

    async def list_pages(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        delimiter: str = "",
        start_after: str = "",
        page_size: int = _common.MAX_PAGE_SIZE,
    ) -> AsyncIterator[ListPage]:
        """Pages of the listing, each with objects and rolled-up prefixes."""
        request = _common.list_request(
            self._bucket(bucket),
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        )
        while True:
            with converted_rpc_errors():
                response = await self._stub.List(request, timeout=self.timeout)
            page = ListPage.from_proto(response)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def list(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        delimiter: str = "",
        start_after: str = "",
        page_size: int = _common.MAX_PAGE_SIZE,
    ) -> AsyncIterator[ObjectInfo]:
        """Objects in key order, following pages (prefixes: use list_pages)."""
        async for page in self.list_pages(
            prefix,
            bucket=bucket,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        ):
            for info in page.objects:
                yield info

    async def sign_url(
        self,
        key: str,
        *,
        bucket: str | None = None,
        method: str = "GET",
        expires_in: float | timedelta | None = 3600,
        download: bool = False,
        filename: str | None = None,
        content_type: str | None = None,
        max_size: int | None = None,
        min_size: int | None = None,
    ) -> SignedUrl:
        """A URL for plain HTTP GET (download), PUT (upload) or POST (HTML-form
        upload: send `form_fields`, then the bytes as the field "file") of one
        object. max_size bounds PUT and POST, min_size POST."""
        request = _common.sign_url_request(
            self._bucket(bucket),
            key,
            method=method,
            expires_in=expires_in,
            download=download,
            filename=filename,
            content_type=content_type,
            max_size=max_size,
            min_size=min_size,
        )
        with converted_rpc_errors():
            response = await self._stub.SignUrl(request, timeout=self.timeout)
        return SignedUrl.from_proto(response)

    async def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_bucket: str | None = None,
        dst_bucket: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        if_source_match: str | None = None,
        if_source_generation_match: int | None = None,
        if_none_match: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        """Copy an object, as Client.copy does (metadata or content_type replaces both)."""
        request = _common.copy_request(
            self._bucket(src_bucket),
            src_key,
            self._bucket(dst_bucket),
            dst_key,
            metadata=metadata,
            content_type=content_type,
            source_conditions=_common.preconditions(
                if_match=if_source_match, if_generation_match=if_source_generation_match
            ),
            destination_conditions=_common.preconditions(
                if_match=if_match,
                if_none_match=if_none_match,
                if_generation_match=if_generation_match,
            ),
        )
        with converted_rpc_errors():
            response = await self._stub.Copy(request, timeout=self.timeout)
        return ObjectInfo.from_proto(response.object)

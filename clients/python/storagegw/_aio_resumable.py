"""Resumable transfers for AsyncClient: _resumable_sync.py's loops, awaited.

The state (digests, offsets, the segment streams, retry decisions) is the
same shared code; file reads run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING

from storagegw import _common, _files
from storagegw._common import converted_rpc_errors
from storagegw._readers import AsyncObjectReader
from storagegw._resumable import (
    ABORT_TIMEOUT,
    DownloadResume,
    Progress,
    SegmentStream,
    UploadSource,
    fresh_status,
)
from storagegw._retry import Retrier, RetryPolicy
from storagegw._types import ObjectInfo, UploadSession, UploadStatus
from storagegw.errors import StorageError
from storagegw.v1 import storage_pb2

if TYPE_CHECKING:
    from storagegw.aio import AsyncClient

__all__ = [
    "abort_upload",
    "download_file",
    "put_resumable",
    "resume_upload",
    "start_upload",
    "upload_status",
]


async def start_upload(client: AsyncClient, spec: storage_pb2.PutSpec) -> UploadSession:
    request = storage_pb2.StartUploadRequest(spec=spec)
    with converted_rpc_errors():
        response = await client._stub.StartUpload(request, timeout=client.timeout)
    return UploadSession.from_proto(response, spec.bucket, spec.key)


async def abort_upload(client: AsyncClient, upload_id: str, wait: float | None = None) -> bool:
    request = storage_pb2.AbortUploadRequest(upload_id=upload_id)
    with converted_rpc_errors():
        response = await client._stub.AbortUpload(request, timeout=wait or client.timeout)
    return response.existed


async def upload_status(client: AsyncClient, upload_id: str) -> UploadStatus:
    request = storage_pb2.QueryUploadRequest(upload_id=upload_id)
    with converted_rpc_errors():
        response = await client._stub.QueryUpload(request, timeout=client.timeout)
    return UploadStatus.from_proto(response, upload_id)


async def _status(client: AsyncClient, upload_id: str, fresh: bool) -> UploadStatus:
    """The upload's status; a fresh one's without asking (see fresh_status)."""
    return fresh_status(upload_id) if fresh else await upload_status(client, upload_id)


async def _blocks(source: UploadSource, offset: int) -> AsyncIterator[bytes]:
    blocks = source.blocks(offset)
    while (item := await asyncio.to_thread(next, blocks, None)) is not None:
        yield item[1]


async def resume_upload(
    client: AsyncClient,
    upload_id: str,
    source: UploadSource,
    retry: RetryPolicy,
    progress: Progress | None,
    *,
    fresh: bool = False,
) -> ObjectInfo:
    retrier = Retrier(retry)
    while True:
        try:
            status = await _status(client, upload_id, fresh and retrier.retries == 0)
            if status.complete and status.object is not None:
                await asyncio.to_thread(source.digest_all)
                return source.digest.check(status.object, "upload verification failed")
            stream = SegmentStream(upload_id, status.persisted_size, source)
            return await client._put_stream(
                stream, _blocks(source, status.persisted_size), progress
            )
        except StorageError as error:
            pause = retrier.next_pause(error, source.digest.size)
            if pause is None:
                raise
            await asyncio.sleep(pause)


async def put_resumable(
    client: AsyncClient,
    spec: storage_pb2.PutSpec,
    source: UploadSource,
    *,
    retry: RetryPolicy,
    progress: Progress | None,
    keep_upload: bool,
    on_start: Callable[[UploadSession], None] | None,
) -> ObjectInfo:
    retrier = Retrier(retry)
    while True:
        try:
            session = await start_upload(client, spec)
            break
        except StorageError as error:
            pause = retrier.next_pause(error, 0)
            if pause is None:
                raise
            await asyncio.sleep(pause)
    try:
        if on_start is not None:
            on_start(session)
        return await resume_upload(client, session.upload_id, source, retry, progress, fresh=True)
    except BaseException:
        if not keep_upload:
            # Shielded: a cancelled task still tells the gateway (best effort).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(abort_upload(client, session.upload_id, ABORT_TIMEOUT))
        raise


async def download_file(
    client: AsyncClient,
    key: str,
    dest_path: str | os.PathLike[str],
    *,
    bucket: str | None,
    first_conditions: storage_pb2.Preconditions | None,
    retry: RetryPolicy,
    progress: Progress | None,
) -> ObjectInfo:
    state = DownloadResume(key)
    retrier = Retrier(retry)
    target = await asyncio.to_thread(_files.DownloadTarget, dest_path)
    try:
        while True:
            request = _common.get_request(
                client._bucket(bucket),
                key,
                offset=state.verified,
                conditions=state.conditions(first_conditions),
            )
            try:
                async with AsyncObjectReader(partial(client._stub.Get, request), key) as reader:
                    state.started(reader.info)
                    async for chunk in reader:
                        await asyncio.to_thread(target.write, chunk)
                        state.accept(chunk)
                        if progress is not None:
                            progress(target.written)
                break
            except StorageError as error:
                if state.complete:
                    break
                pause = retrier.next_pause(error, state.verified)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
        info = state.finish()
        await asyncio.to_thread(target.commit)
    except BaseException:
        target.discard()
        raise
    return info

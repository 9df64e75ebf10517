"""Resumable transfers for the sync Client: the loops that retry and resume.

The state they keep (what was sent, verified, digested) is in _resumable.py,
shared with the async client's _aio_resumable.py.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from storagegw import _common, _files
from storagegw._common import converted_rpc_errors
from storagegw._readers import ObjectReader
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
    from storagegw.client import Client

__all__ = [
    "abort_upload",
    "download_file",
    "put_resumable",
    "resume_upload",
    "start_upload",
    "upload_status",
]


def start_upload(client: Client, spec: storage_pb2.PutSpec) -> UploadSession:
    request = storage_pb2.StartUploadRequest(spec=spec)
    with converted_rpc_errors():
        response = client._stub.StartUpload(request, timeout=client.timeout)
    return UploadSession.from_proto(response, spec.bucket, spec.key)


def abort_upload(client: Client, upload_id: str, timeout: float | None = None) -> bool:
    request = storage_pb2.AbortUploadRequest(upload_id=upload_id)
    with converted_rpc_errors():
        response = client._stub.AbortUpload(request, timeout=timeout or client.timeout)
    return response.existed


def upload_status(client: Client, upload_id: str) -> UploadStatus:
    request = storage_pb2.QueryUploadRequest(upload_id=upload_id)
    with converted_rpc_errors():
        response = client._stub.QueryUpload(request, timeout=client.timeout)
    return UploadStatus.from_proto(response, upload_id)


def resume_upload(
    client: Client,
    upload_id: str,
    source: UploadSource,
    retry: RetryPolicy,
    progress: Progress | None,
    *,
    fresh: bool = False,
) -> ObjectInfo:
    """Send `source` to the upload from its persisted size, resuming after
    transient failures, and return the verified object. `fresh`: the upload
    was just started, so its first stream needs no QueryUpload."""
    retrier = Retrier(retry)
    while True:
        try:
            if fresh and retrier.retries == 0:
                status = fresh_status(upload_id)
            else:
                status = upload_status(client, upload_id)
            if status.complete and status.object is not None:
                # Committed already (say, the response to the last stream was lost).
                source.digest_all()
                return source.digest.check(status.object, "upload verification failed")
            stream = SegmentStream(upload_id, status.persisted_size, source)
            blocks = (block for _, block in source.blocks(status.persisted_size))
            return client._put(stream, blocks, progress)
        except StorageError as error:
            pause = retrier.next_pause(error, source.digest.size)
            if pause is None:
                raise
            time.sleep(pause)


def download_file(
    client: Client,
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
    target = _files.DownloadTarget(dest_path)
    try:
        while True:
            try:
                conditions = state.conditions(first_conditions)
                request = _common.get_request(
                    client._bucket(bucket), key, offset=state.verified, conditions=conditions
                )
                with ObjectReader(client._stub.Get(request), key) as reader:
                    state.started(reader.info)
                    for chunk in reader:
                        target.write(chunk)
                        state.accept(chunk)
                        if progress is not None:
                            progress(target.written)
                break
            except StorageError as error:
                if state.complete:
                    break  # every byte is here: the whole-object check decides
                pause = retrier.next_pause(error, state.verified)
                if pause is None:
                    raise
                time.sleep(pause)
        info = state.finish()
        target.commit()
    except BaseException:
        target.discard()
        raise
    return info


def start_with_retry(
    client: Client, spec: storage_pb2.PutSpec, retry: RetryPolicy
) -> UploadSession:
    retrier = Retrier(retry)
    while True:
        try:
            return start_upload(client, spec)
        except StorageError as error:
            pause = retrier.next_pause(error, 0)
            if pause is None:
                raise
            time.sleep(pause)


def abort_quietly(client: Client, upload_id: str) -> None:
    """Best effort: a failure here must not hide the one being raised."""
    with contextlib.suppress(Exception):
        abort_upload(client, upload_id, timeout=ABORT_TIMEOUT)


def put_resumable(
    client: Client,
    spec: storage_pb2.PutSpec,
    source: UploadSource,
    *,
    retry: RetryPolicy,
    progress: Progress | None,
    keep_upload: bool,
    on_start: Callable[[UploadSession], None] | None,
) -> ObjectInfo:
    session = start_with_retry(client, spec, retry)
    try:
        if on_start is not None:
            on_start(session)
        return resume_upload(client, session.upload_id, source, retry, progress, fresh=True)
    except BaseException:
        if not keep_upload:
            abort_quietly(client, session.upload_id)
        raise

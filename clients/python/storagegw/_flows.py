"""The clients' operations as sans-IO flows (see _effects.py).

Each function here is a generator that yields effects and receives their
results: the requests to send, the retry decisions and pauses, the resumable
upload and download state machines and their clean-up. Client runs a flow by
blocking on each effect, AsyncClient by awaiting it, so the two cannot drift
apart. Nothing here touches a socket, a file or a clock by itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

from storagegw._effects import (
    BestEffort,
    Blocking,
    Call,
    Flow,
    OpenedRead,
    OpenRead,
    ReadChunk,
    SendPut,
    Sleep,
)
from storagegw._files import DownloadTarget
from storagegw._resumable import (
    ABORT_TIMEOUT,
    DownloadResume,
    SegmentStream,
    UploadSource,
    fresh_status,
)
from storagegw._retry import Retrier, RetryPolicy
from storagegw._types import ListPage, ObjectInfo, Progress, SignedUrl, UploadSession, UploadStatus
from storagegw.errors import BucketNotFound, NotFound, StorageError
from storagegw.v1 import storage_pb2

__all__ = [
    "abort_upload",
    "copy",
    "delete",
    "download",
    "exists",
    "head",
    "list_pages",
    "put_resumable",
    "query_upload",
    "resume_upload",
    "sign_url",
    "start_upload",
]

# A resumed Get's request: (offset, preconditions) -> GetRequest.
GetRequestFor = Callable[[int, storage_pb2.Preconditions | None], storage_pb2.GetRequest]


# ---------------------------------------------------------------- unary calls


_T = TypeVar("_T")


def head(request: storage_pb2.HeadRequest, timeout: float | None) -> Flow[ObjectInfo]:
    response: storage_pb2.HeadResponse = yield Call("Head", request, timeout)
    return ObjectInfo.from_proto(response.object)


def exists(request: storage_pb2.HeadRequest, timeout: float | None) -> Flow[bool]:
    """Whether the object exists (a missing bucket still raises BucketNotFound)."""
    try:
        yield from head(request, timeout)
    except BucketNotFound:
        raise
    except NotFound:
        return False
    return True


def delete(request: storage_pb2.DeleteRequest, timeout: float | None) -> Flow[bool]:
    response: storage_pb2.DeleteResponse = yield Call("Delete", request, timeout)
    return response.existed


def list_pages(request: storage_pb2.ListRequest, timeout: float | None) -> Iterator[Flow[ListPage]]:
    """One flow per page; the next is made only once the previous one ran
    and found a next page token (it sets it on `request`)."""
    while True:
        yield _list_page(request, timeout)
        if not request.page_token:
            return


def alone(flow: Flow[_T]) -> Flow[tuple[_T]]:
    """`flow`'s result as a batch of one (a listing of pages)."""
    return ((yield from flow),)


def objects(flow: Flow[ListPage]) -> Flow[tuple[ObjectInfo, ...]]:
    """A page's objects (a listing of objects)."""
    return (yield from flow).objects


def _list_page(request: storage_pb2.ListRequest, timeout: float | None) -> Flow[ListPage]:
    response: storage_pb2.ListResponse = yield Call("List", request, timeout)
    page = ListPage.from_proto(response)
    request.page_token = page.next_page_token
    return page


def sign_url(request: storage_pb2.SignUrlRequest, timeout: float | None) -> Flow[SignedUrl]:
    response: storage_pb2.SignUrlResponse = yield Call("SignUrl", request, timeout)
    return SignedUrl.from_proto(response)


def copy(request: storage_pb2.CopyRequest, timeout: float | None) -> Flow[ObjectInfo]:
    response: storage_pb2.CopyResponse = yield Call("Copy", request, timeout)
    return ObjectInfo.from_proto(response.object)


def start_upload(spec: storage_pb2.PutSpec, timeout: float | None) -> Flow[UploadSession]:
    request = storage_pb2.StartUploadRequest(spec=spec)
    response: storage_pb2.StartUploadResponse = yield Call("StartUpload", request, timeout)
    return UploadSession.from_proto(response, spec.bucket, spec.key)


def query_upload(upload_id: str, timeout: float | None) -> Flow[UploadStatus]:
    request = storage_pb2.QueryUploadRequest(upload_id=upload_id)
    response: storage_pb2.QueryUploadResponse = yield Call("QueryUpload", request, timeout)
    return UploadStatus.from_proto(response, upload_id)


def abort_upload(upload_id: str, timeout: float | None) -> Flow[bool]:
    request = storage_pb2.AbortUploadRequest(upload_id=upload_id)
    response: storage_pb2.AbortUploadResponse = yield Call("AbortUpload", request, timeout)
    return response.existed


# ---------------------------------------------------------------- retrying


def _wait_to_retry(retrier: Retrier, error: StorageError, position: int) -> Flow[None]:
    """Pause before the next attempt, or re-raise `error` when retrying
    cannot help or is used up (see Retrier.next_pause)."""
    pause = retrier.next_pause(error, position)
    if pause is None:
        raise error
    yield Sleep(pause)


def _start_with_retry(
    spec: storage_pb2.PutSpec, retry: RetryPolicy, timeout: float | None
) -> Flow[UploadSession]:
    retrier = Retrier(retry)
    while True:
        try:
            return (yield from start_upload(spec, timeout))
        except StorageError as error:
            yield from _wait_to_retry(retrier, error, 0)


# ---------------------------------------------------------------- resumable uploads


def put_resumable(
    spec: storage_pb2.PutSpec,
    source: UploadSource,
    retry: RetryPolicy,
    progress: Progress | None,
    keep_upload: bool,
    on_start: Callable[[UploadSession], None] | None,
    timeout: float | None,
) -> Flow[ObjectInfo]:
    """Start an upload and send `source` to it, resuming after transient
    failures. On any failure (cancellation too) the upload is aborted, best
    effort, unless keep_upload."""
    session = yield from _start_with_retry(spec, retry, timeout)
    try:
        if on_start is not None:
            on_start(session)
        return (
            yield from resume_upload(
                session.upload_id, source, retry, progress, timeout, fresh=True
            )
        )
    except GeneratorExit:
        raise  # abandoned by its transport: nothing more may be yielded
    except BaseException:
        if not keep_upload:
            request = storage_pb2.AbortUploadRequest(upload_id=session.upload_id)
            yield BestEffort(Call("AbortUpload", request, ABORT_TIMEOUT))
        raise


def resume_upload(
    upload_id: str,
    source: UploadSource,
    retry: RetryPolicy,
    progress: Progress | None,
    timeout: float | None,
    *,
    fresh: bool = False,
) -> Flow[ObjectInfo]:
    """Send `source` to the upload from its persisted size, resuming after
    transient failures, and return the verified object. `fresh`: the upload
    was just started, so its first stream needs no QueryUpload."""
    retrier = Retrier(retry)
    while True:
        try:
            if fresh and retrier.retries == 0:
                status = fresh_status(upload_id)
            else:
                status = yield from query_upload(upload_id, timeout)
            if status.complete and status.object is not None:
                # Committed already (say, the response to the last stream was lost).
                yield Blocking(source.digest_all)
                return source.digest.check(status.object, "upload verification failed")
            offset = status.persisted_size
            blocks = (block for _, block in source.blocks(offset))
            info: ObjectInfo = yield SendPut(
                SegmentStream(upload_id, offset, source), blocks, progress
            )
            return info
        except StorageError as error:
            yield from _wait_to_retry(retrier, error, source.digest.size)


# ---------------------------------------------------------------- downloads


def download(
    get_request: GetRequestFor,
    key: str,
    dest_path: str | os.PathLike[str],
    first_conditions: storage_pb2.Preconditions | None,
    retry: RetryPolicy,
    progress: Progress | None,
) -> Flow[ObjectInfo]:
    """Download to a temporary file beside `dest_path`, renamed over it once
    verified; a broken Get is re-issued from the bytes verified so far, on
    condition that the object is the generation first seen."""
    state = DownloadResume(key)
    retrier = Retrier(retry)
    target: DownloadTarget = yield Blocking(partial(DownloadTarget, dest_path))
    try:
        while True:
            request = get_request(state.verified, state.conditions(first_conditions))
            try:
                yield from _receive(request, key, state, target, progress)
                break
            except StorageError as error:
                if state.complete:
                    break  # every byte is here: the whole-object check decides
                yield from _wait_to_retry(retrier, error, state.verified)
        info = state.finish()
        yield Blocking(target.commit)
    except BaseException:
        target.discard()
        raise
    return info


def read_all(request: storage_pb2.GetRequest, key: str) -> Flow[bytes]:
    """One Get's verified bytes, joined (get_bytes)."""
    opened: OpenedRead = yield OpenRead(request, key)
    try:
        chunks: list[bytes] = []
        while (chunk := (yield ReadChunk(opened.chunks))) is not None:
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        opened.reader.close()


def _receive(
    request: storage_pb2.GetRequest,
    key: str,
    state: DownloadResume,
    target: DownloadTarget,
    progress: Progress | None,
) -> Flow[None]:
    """One Get stream into `target`, as far as it goes. The reader checks
    each chunk and counts it in the download's digest, so here the chunks
    are only written."""
    opened: OpenedRead = yield OpenRead(request, key, state.digest)
    try:
        state.started(opened.reader.info, opened.reader.content_range)
        while (chunk := (yield ReadChunk(opened.chunks))) is not None:
            yield Blocking(partial(target.write, chunk))
            state.accept(len(chunk))
            if progress is not None:
                progress(target.written)
    finally:
        opened.reader.close()

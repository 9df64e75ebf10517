"""The clients' operations as sans-IO flows (see _effects.py).

Each function here is a generator that yields effects and receives their
results: the requests to send, the retry decisions and pauses, the resumable
upload and download state machines and their clean-up. Client runs a flow by
blocking on each effect, AsyncClient by awaiting it, so the two cannot drift
apart. Nothing here touches a socket, a file or a clock by itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

from storagegw._crc32c import Buffer
from storagegw._effects import (
    BestEffort,
    Blocking,
    Call,
    Concurrently,
    Flow,
    OpenedRead,
    OpenRead,
    ReadChunk,
    ReadChunkInto,
    Reader,
    SendPut,
    Sleep,
)
from storagegw._files import DownloadTarget
from storagegw._resumable import (
    ABORT_TIMEOUT,
    DownloadResume,
    ParallelDownload,
    SegmentStream,
    UploadSource,
    check_ranges,
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
    "wait_to_retry",
]

# A Get's request from an offset: (offset, preconditions) -> GetRequest
# (the flow sets its read_limit when it reads a range).
GetRequestFor = Callable[[int, storage_pb2.Preconditions | None], storage_pb2.GetRequest]
# download_file with parallel ranges turned off.
SINGLE_STREAM = ParallelDownload(threshold=None, streams=1)


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


def wait_to_retry(retrier: Retrier, error: StorageError, position: int) -> Flow[None]:
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
            yield from wait_to_retry(retrier, error, 0)


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
            yield from wait_to_retry(retrier, error, source.digest.size)


# ---------------------------------------------------------------- downloads


def download(
    get_request: GetRequestFor,
    key: str,
    dest_path: str | os.PathLike[str],
    first_conditions: storage_pb2.Preconditions | None,
    retry: RetryPolicy,
    progress: Progress | None,
    parallel: ParallelDownload = SINGLE_STREAM,
    *,
    sha256: bool = False,
) -> Flow[ObjectInfo]:
    """Download to a temporary file beside `dest_path`, renamed over it once
    verified. A large object is read as ranges at once (see
    ParallelDownload), each written in place; a broken Get is re-issued from
    the bytes its range verified so far, on condition that the object is the
    generation first seen."""
    first = parallel.first_range(key, sha256=sha256)
    fetch = _RangeFetch(get_request, first_conditions, retry, progress)
    fetch.target = yield Blocking(partial(DownloadTarget, dest_path))
    try:
        opened = yield from fetch.open(first)
        assert first.info is not None
        ranges = parallel.rest(first)
        if not ranges:
            yield from fetch.receive(first, opened)
            info = first.finish()
        else:
            first.digest.drop_sha256()
            yield Blocking(partial(fetch.target.allocate, first.info.size))
            flows = (fetch.receive(first, opened), *(fetch.receive(part) for part in ranges))
            yield Concurrently(flows, fetch.stop)
            info = check_ranges(first.info, [first, *ranges], f"download of {key!r} corrupted")
        yield Blocking(fetch.target.commit)
    except BaseException:
        fetch.stop()
        if fetch.target is not None:
            fetch.target.discard()
        raise
    return info


class _Stopped(Exception):
    """A range gave up because another failed (never raised to the caller:
    the transport raises the first failure)."""


class _RangeFetch:
    """What the ranges of one download share: how to ask for a range, the
    temporary file, the progress report, and the means to stop them all."""

    def __init__(
        self,
        get_request: GetRequestFor,
        first_conditions: storage_pb2.Preconditions | None,
        retry: RetryPolicy,
        progress: Progress | None,
    ) -> None:
        self._get_request = get_request
        self._first_conditions = first_conditions
        self._retry = retry
        self._progress = progress
        self._reported = 0
        self._report_lock = threading.Lock()
        self._stopped = False
        self._readers: set[Reader] = set()
        self.target: DownloadTarget | None = None

    def stop(self) -> None:
        """Make every range end: a Get under way is cancelled (the reader's
        close() may be called from any thread), the others see the flag."""
        self._stopped = True
        for reader in list(self._readers):
            reader.close()

    def open(self, part: DownloadResume) -> Flow[OpenedRead]:
        """Start a Get of what `part` still misses, retrying as its policy says."""
        retrier = Retrier(self._retry)
        while True:
            try:
                return (yield from self._open_once(part))
            except StorageError as error:
                yield from self._pause(retrier, error, part)

    def receive(self, part: DownloadResume, opened: OpenedRead | None = None) -> Flow[None]:
        """Read `part` to its end into the target: the Get `opened`, then
        (after a break) Gets of what it still misses."""
        retrier = Retrier(self._retry)
        while True:
            try:
                if opened is None:
                    opened = yield from self._open_once(part)
                yield from self._read(part, opened)
                return
            except StorageError as error:
                if part.complete:
                    return  # every byte is here: the whole-object check decides
                opened = None
                yield from self._pause(retrier, error, part)

    def _pause(self, retrier: Retrier, error: StorageError, part: DownloadResume) -> Flow[None]:
        if self._stopped:
            raise _Stopped from error
        yield from wait_to_retry(retrier, error, part.verified)

    def _open_once(self, part: DownloadResume) -> Flow[OpenedRead]:
        if self._stopped:
            raise _Stopped
        request = self._get_request(part.verified, part.conditions(self._first_conditions))
        if part.limit is not None:
            request.read_limit = part.limit
        opened: OpenedRead = yield OpenRead(request, part.key, part.digest)
        self._readers.add(opened.reader)  # stop() closes it from now on
        try:
            part.started(opened.reader.info, opened.reader.content_range)
        except BaseException:
            self._readers.discard(opened.reader)
            opened.reader.close()
            raise
        return opened

    def _read(self, part: DownloadResume, opened: OpenedRead) -> Flow[None]:
        """One Get stream into the target, as far as it goes. The reader
        checks each chunk and counts it in the range's digest, so here the
        chunks are only written, in place."""
        assert self.target is not None
        write_at = self.target.write_at
        try:
            while received := (yield ReadChunkInto(opened, partial(write_at, part.verified))):
                size, written = received
                part.accept(size)
                self._report(written)
                if self._stopped:
                    raise _Stopped
        finally:
            self._readers.discard(opened.reader)
            opened.reader.close()

    def _report(self, written: int) -> None:
        # Ranges finish their writes in any order, in threads of the sync
        # client: report only progress, one call at a time.
        if self._progress is not None:
            with self._report_lock:
                if written > self._reported:
                    self._reported = written
                    self._progress(written)


def read_all(request: storage_pb2.GetRequest, key: str, *, sha256: bool = False) -> Flow[bytes]:
    """One Get's verified bytes, joined (get_bytes); sha256: see OpenRead."""
    opened: OpenedRead = yield OpenRead(request, key, sha256=sha256)
    try:
        chunks: list[Buffer] = []
        while (chunk := (yield ReadChunk(opened.chunks))) is not None:
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        opened.reader.close()

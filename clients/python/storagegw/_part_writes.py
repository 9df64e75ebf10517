"""write_upload's flow: send one part of a resumable upload (a PartStream),
resuming a broken stream from the persisted size. See _parts.py."""

from __future__ import annotations

from collections.abc import Iterator

from storagegw._effects import Flow, SendPut
from storagegw._flows import query_upload, wait_to_retry
from storagegw._parts import PartStream
from storagegw._retry import Retrier, RetryPolicy
from storagegw._types import UploadStatus
from storagegw.errors import Internal, StorageError

__all__ = ["write_upload"]


def _blocks(data: memoryview, chunk_size: int) -> Iterator[bytes]:
    """`data` in chunks, each copied only when its message is made."""
    for start in range(0, len(data), chunk_size):
        yield bytes(data[start : start + chunk_size])


def write_upload(
    upload_id: str,
    data: bytes | bytearray | memoryview,
    offset: int,
    finish: bool,
    chunk_size: int,
    retry: RetryPolicy,
    timeout: float | None,
) -> Flow[UploadStatus]:
    """Send `data` as bytes [offset, offset + len(data)) of the upload. A
    stream broken by a transient failure is resumed from the persisted size
    QueryUpload tells (bytes below it are not sent again); a persisted size
    below `offset` means bytes the caller no longer has were lost: the
    failure is raised."""
    view = memoryview(data).cast("B")
    end = offset + len(view)
    retrier = Retrier(retry)
    start = offset
    failure: StorageError | None = None
    while True:
        if failure is not None:
            yield from wait_to_retry(retrier, failure, start)
            try:
                status = yield from query_upload(upload_id, timeout)
            except StorageError as error:
                failure = error
                continue
            if status.complete and status.object is not None:
                # Committed already: the answer to the last stream was lost.
                if finish and status.object.size == end:
                    return status
                raise Internal(f"upload {upload_id} is finished, at {status.object.size} bytes")
            if not offset <= status.persisted_size <= end:
                raise failure
            start = status.persisted_size
        stream = PartStream(upload_id, start, finish)
        try:
            answer: UploadStatus = yield SendPut(
                stream, _blocks(view[start - offset :], chunk_size), None
            )
            return answer
        except StorageError as error:
            failure = error

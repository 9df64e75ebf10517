"""The operations of both clients whose signatures differ by a type, each
written once as the others are in _operations.py: put_file and resume_upload
read a source (AsyncClient's may also be an async iterable; see
_op.SourceOp), and open returns the client's own reader (_op.Opener).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import BinaryIO

from storagegw import _effects, _flows
from storagegw._base import ClientBase

# PutSource and the readers are the methods' annotations in Client and
# AsyncClient but not the builders': typing.get_type_hints looks them up here.
from storagegw._common import AsyncPutSource, PutSource  # noqa: F401
from storagegw._effects import Blocking, Flow
from storagegw._op import opener, source_operation
from storagegw._readers import AsyncObjectReader, ObjectReader  # noqa: F401
from storagegw._resumable import UploadSource, open_upload_source, wants_resumable
from storagegw._retry import RetryPolicy
from storagegw._types import ObjectInfo, Progress, UploadSession

__all__ = ["open", "put_file", "resume_upload"]

# A resumable upload's flow, and its source as open_upload_source gives it:
# (the source, the file to close if opened here, content type, size).
Sent = Flow[ObjectInfo]
OpenedSource = tuple[UploadSource, BinaryIO | None, str | None, int | None]

# ------------------------------------------------------------ uploads


@source_operation(
    async_doc="""Store an object from a path, a binary file, or a (async) iterable of bytes.

    Files are read in a worker thread; a sync iterable is iterated on the
    event loop, so pass an async iterable for a source that blocks.
    Resumable uploads, retries and keep_upload as for Client.put_file; a
    cancelled task aborts the upload (shielded, best effort) unless
    keep_upload=True.
    """
)
def put_file(
    self: ClientBase,
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
    verify_sha256: bool | None = None,
) -> Flow[ObjectInfo]:
    """Store an object from a path, a binary file object or an iterable of bytes.

    For a path, the content type is guessed from the file name and the
    size (checked by the gateway) taken from the file. `progress` is
    called with the number of bytes sent so far, from a gRPC thread.

    Resumable uploads: with resumable=True (or by default, resumable=None,
    for a path or seekable file of at least the client's
    resumable_threshold, 8 MiB unless set) the object is uploaded through
    StartUpload and Put continuations. On UNAVAILABLE, DEADLINE_EXCEEDED or
    a broken connection the client waits (exponential backoff with
    jitter, per `retry` or the client's policy), asks the gateway how much
    it holds (QueryUpload) and continues from there. The whole object's
    CRC32C, computed while reading the source, goes with the last message
    and is compared with the stored object's. Retrying is safe whatever the
    if_* conditions: the upload id makes every continuation idempotent. An
    error that retrying cannot fix (a failed precondition, say) is raised
    at once. On any failure, including
    KeyboardInterrupt or cancellation, the upload is aborted (best effort)
    unless keep_upload=True; to resume it later, get its id from
    on_upload_start (called with the UploadSession before any data is
    sent) and call resume_upload(). resumable=False sends one plain Put,
    never retried; a non-seekable source cannot be resumable.

    verify_sha256 (None: the client's setting, False unless set): the
    client also computes the object's SHA-256 and sends it, and the gateway
    stores the object only if its own matches, whatever the bucket's choice
    of SHA-256. Without it the client computes none: the object's SHA-256
    is the gateway's (ObjectInfo.sha256, None in a bucket that computes it
    only on request), over bytes the CRC32C checks end to end.
    """
    conditions = (if_match, if_none_match, if_generation_match)
    sha256 = self._verifies_sha256(verify_sha256)
    spec = self._spec_for(key, bucket, metadata, *conditions, sha256)
    threshold = self.resumable_threshold
    if not (yield Blocking(partial(wants_resumable, resumable, source, size, threshold))):
        info: ObjectInfo = yield _effects.PutSource(source, content_type, size, spec, progress)
        return info
    opened = partial(open_upload_source, source, self.chunk_size, content_type, size, sha256)

    def send(upload_source: UploadSource, content_type: str | None, size: int | None) -> Sent:
        policy = retry or self.retry
        return _flows.put_resumable(
            spec(content_type, size),
            upload_source,
            policy,
            progress,
            keep_upload,
            on_upload_start,
            self.timeout,
        )

    return (yield from _sent_from(opened, send))


@source_operation(
    async_doc="""Continue an upload from its persisted size, as Client.resume_upload does."""
)
def resume_upload(
    self: ClientBase,
    upload_id: str,
    source: AsyncPutSource,
    *,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
    verify_sha256: bool | None = None,
) -> Flow[ObjectInfo]:
    """Send `source` (a path, bytes or seekable file with the whole
    object) to an upload from its persisted size, retrying as put_file
    does, and return the verified object. The bytes the gateway already
    holds are read (not sent) for the whole-object checksums. The upload
    is the caller's: it is not aborted on failure (see abort_upload).
    verify_sha256 as for put_file; in a bucket that computes SHA-256 only
    on request, the upload must have been started with it too."""
    sha256 = self._verifies_sha256(verify_sha256)
    opened = partial(open_upload_source, source, self.chunk_size, None, None, sha256)

    def send(upload_source: UploadSource, _content_type: str | None, _size: int | None) -> Sent:
        policy = retry or self.retry
        return _flows.resume_upload(upload_id, upload_source, policy, progress, self.timeout)

    return (yield from _sent_from(opened, send))


def _sent_from(
    opened: Callable[[], OpenedSource],
    send: Callable[[UploadSource, str | None, int | None], Sent],
) -> Sent:
    """Open the upload's source (in a worker: it may open a file), `send` it
    with its content type and size, and close a file opened here whatever
    happens."""
    upload_source, file, content_type, size = yield Blocking(opened)
    try:
        return (yield from send(upload_source, content_type, size))
    finally:
        if file is not None:
            file.close()


# ------------------------------------------------------------ downloads
# Last in the module: from here on `open` is the operation, not the builtin.


@opener(async_doc="""A reader for an object or range; use `async with` or `await`.""")
def open(  # the method's public name, shadowing the builtin only here
    self: ClientBase,
    key: str,
    *,
    bucket: str | None = None,
    offset: int = 0,
    length: int | None = None,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_generation_match: int | None = None,
    verify_sha256: bool | None = None,
) -> _effects.OpenRead:
    """Start reading an object (offset < 0 reads the last -offset bytes).

    Every chunk's CRC32C is checked as it arrives and, once the whole
    object has been read, the object's; verify_sha256 (None: the client's
    setting) hashes the bytes too and compares the object's SHA-256."""
    request = self._get_request(
        key, bucket, offset, length, if_match, if_none_match, if_generation_match
    )
    return _effects.OpenRead(request, request.key, sha256=self._verifies_sha256(verify_sha256))

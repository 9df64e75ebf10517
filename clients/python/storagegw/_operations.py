"""The operations Client and AsyncClient share, each written once: its public
signature and doc, and the flow it runs (see _op.py for how each client
performs it). Where the two clients' docs differ, `async_doc` is
AsyncClient's. Operations whose signatures differ by a type (put_file and
resume_upload take different sources, open returns different readers) are
in _transfers.py; _methods.Methods names them all for both clients.
"""

from __future__ import annotations

import builtins
import os

# Iterator and AsyncIterator are the listings' return types in Client and
# AsyncClient (see _op.Listing): typing.get_type_hints looks them up here.
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping  # noqa: F401
from datetime import datetime, timedelta

from storagegw import _batch, _common, _flows, _part_writes
from storagegw._base import ClientBase
from storagegw._effects import Flow, PutSource
from storagegw._op import Batches, listing, operation
from storagegw._resumable import (
    DEFAULT_PARALLEL_STREAMS,
    DEFAULT_PARALLEL_THRESHOLD,
    ParallelDownload,
)
from storagegw._retry import RetryPolicy
from storagegw._types import (
    DeleteResult,
    KeyKind,
    ListPage,
    ObjectInfo,
    Progress,
    SignedUrl,
    UploadSession,
    UploadStatus,
)
from storagegw.v1 import storage_pb2

__all__ = [
    "abort_upload",
    "copy",
    "delete",
    "delete_many",
    "download_file",
    "exists",
    "get_bytes",
    "head",
    "kind",
    "list",
    "list_pages",
    "put_bytes",
    "query_upload",
    "sign_url",
    "start_upload",
    "write_upload",
]

_conditions = _common.preconditions

# ------------------------------------------------------------ uploads


@operation()
def put_bytes(
    self: ClientBase,
    key: str,
    data: bytes | bytearray | memoryview,
    *,
    bucket: str | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    if_none_match: str | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
    verify_sha256: bool | None = None,
) -> Flow[ObjectInfo]:
    """Store `data` under `key`. if_none_match="*" only creates.

    verify_sha256 (None: the client's setting) as for put_file."""
    conditions = (if_match, if_none_match, if_generation_match)
    spec = self._spec_for(key, bucket, metadata, *conditions, verify_sha256)
    info: ObjectInfo = yield PutSource([bytes(data)], content_type, len(data), spec, None)
    return info


@operation(async_doc="""Start a resumable upload, as Client.start_upload does.""")
def start_upload(
    self: ClientBase,
    key: str,
    *,
    bucket: str | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    size: int | None = None,
    if_none_match: str | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
    verify_sha256: bool | None = None,
) -> Flow[UploadSession]:
    """Start a resumable upload; send its data with resume_upload().

    The conditions are checked now and again when the upload commits.
    verify_sha256 (None: the client's setting): the upload computes the
    object's SHA-256 whatever the bucket's choice, so that resume_upload
    with verify_sha256=True can have its own checked.
    """
    conditions = (if_match, if_none_match, if_generation_match)
    spec = self._spec_for(key, bucket, metadata, *conditions, verify_sha256)
    return _flows.start_upload(spec(content_type, size), self.timeout)


@operation(async_doc=None)
def query_upload(self: ClientBase, upload_id: str) -> Flow[UploadStatus]:
    """The upload's persisted size, and its object once complete."""
    return _flows.query_upload(upload_id, self.timeout)


@operation(async_doc=None)
def abort_upload(self: ClientBase, upload_id: str) -> Flow[bool]:
    """Discard an unfinished upload; returns whether it existed."""
    return _flows.abort_upload(upload_id, self.timeout)


@operation()
def write_upload(
    self: ClientBase,
    upload_id: str,
    data: bytes | bytearray | memoryview,
    *,
    offset: int,
    finish: bool = False,
    retry: RetryPolicy | None = None,
) -> Flow[UploadStatus]:
    """Send `data` as the upload's bytes from `offset` (at most its persisted
    size: InvalidWriteOffset, with .persisted_size, otherwise), and finish
    the upload (commit the object) if `finish`. Returns the upload's status:
    the persisted size, which may stop short of the end of `data` (a backend
    persists whole units: an S3 part...; send the rest again with the next
    part), or the object once finished. A broken stream is resumed from the
    persisted size, as put_file's are. The upload is the caller's: it is not
    aborted on failure."""
    policy = retry or self.retry
    return _part_writes.write_upload(
        upload_id, data, offset, finish, self.chunk_size, policy, self.timeout
    )


# ------------------------------------------------------------ downloads


@operation()
def get_bytes(
    self: ClientBase,
    key: str,
    *,
    bucket: str | None = None,
    offset: int = 0,
    length: int | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
    verify_sha256: bool | None = None,
) -> Flow[bytes]:
    """The object's bytes, or a range of them, verified (CRC32C; and
    SHA-256 with verify_sha256, None: the client's setting; see open)."""
    request = self._get_request(key, bucket, offset, length, if_match, None, if_generation_match)
    return _flows.read_all(request, key, sha256=self._verifies_sha256(verify_sha256))


@operation(
    async_doc="""Download to `dest_path` atomically, in parallel ranges when large,
    resuming a broken Get, as Client.download_file does."""
)
def download_file(
    self: ClientBase,
    key: str,
    dest_path: str | os.PathLike[str],
    *,
    bucket: str | None = None,
    progress: Progress | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
    retry: RetryPolicy | None = None,
    parallel: int = DEFAULT_PARALLEL_STREAMS,
    parallel_threshold: int | None = DEFAULT_PARALLEL_THRESHOLD,
    verify_sha256: bool | None = None,
) -> Flow[ObjectInfo]:
    """Download to `dest_path` atomically: it appears only once verified.

    The data goes to a temporary file beside the destination, is checked
    (every chunk and the whole object), flushed to disk and then renamed
    over `dest_path`; on any error the temporary file is removed. An
    object larger than `parallel_threshold` bytes (64 MiB by default) is
    read as `parallel` ranges at once (4 by default), after a first
    range of `parallel_threshold` bytes, each a Get of the generation the
    first saw, written in place; the whole object's CRC32C is then
    combined from the ranges' and checked. verify_sha256 (None: the
    client's setting) hashes the bytes too, in one stream whatever
    `parallel` says, and compares the object's SHA-256. A Get broken by
    UNAVAILABLE, DEADLINE_EXCEEDED or a lost connection is re-issued for
    what its range still misses, on condition that the object is still the
    generation first seen (PreconditionFailed if it was replaced
    meanwhile); `retry` (or the client's policy) says how. `progress` gets
    the bytes written so far, one call at a time (from the ranges'
    threads, in Client's parallel downloads).
    """
    bucket_name = self._bucket(bucket)

    def request(
        offset: int, conditions: storage_pb2.Preconditions | None
    ) -> storage_pb2.GetRequest:
        return _common.get_request(bucket_name, key, offset=offset, conditions=conditions)

    first = _conditions(if_match=if_match, if_generation_match=if_generation_match)
    plan = ParallelDownload(parallel_threshold, parallel)
    sha256, retry = self._verifies_sha256(verify_sha256), retry or self.retry
    return _flows.download(request, key, dest_path, first, retry, progress, plan, sha256=sha256)


# ------------------------------------------------------------ metadata


@operation()
def head(
    self: ClientBase,
    key: str,
    *,
    bucket: str | None = None,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_generation_match: int | None = None,
) -> Flow[ObjectInfo]:
    conditions = _conditions(
        if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
    )
    request = _common.head_request(self._bucket(bucket), key, conditions)
    return _flows.head(request, self.timeout)


@operation()
def exists(self: ClientBase, key: str, *, bucket: str | None = None) -> Flow[bool]:
    """Whether the object exists (a missing bucket still raises BucketNotFound)."""
    return _flows.exists(_common.head_request(self._bucket(bucket), key), self.timeout)


@operation()
def delete(
    self: ClientBase,
    key: str,
    *,
    bucket: str | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
) -> Flow[bool]:
    """Delete the object; returns whether it existed."""
    conditions = _conditions(if_match=if_match, if_generation_match=if_generation_match)
    request = _common.delete_request(self._bucket(bucket), key, conditions)
    return _flows.delete(request, self.timeout)


@operation()
def delete_many(
    self: ClientBase, keys: Iterable[str], *, bucket: str | None = None
) -> Flow[builtins.list[DeleteResult]]:
    """Delete many objects of one bucket: a DeleteObjects call per 1,000 keys.

    Returns one DeleteResult per key, in order: whether it existed, or the
    error that kept it from being deleted (an invalid key, AccessDenied...),
    which does not stop the other keys. A call that fails as a whole
    (BucketNotFound, Unavailable...) raises; the batches sent before it
    stay deleted.
    """
    return _batch.delete_many(self._bucket(bucket), keys, self.timeout)


@operation()
def kind(self: ClientBase, key: str, *, bucket: str | None = None) -> Flow[KeyKind | None]:
    """What `key` names, in one call: an object (KeyKind "object", with its
    ObjectInfo), a prefix (KeyKind "prefix": no object, but objects under
    key + "/", a directory to a filesystem), or nothing (None). An object
    wins over a prefix. A missing bucket still raises BucketNotFound."""
    return _batch.kind(_common.head_request(self._bucket(bucket), key), self.timeout)


@operation()
def sign_url(
    self: ClientBase,
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
    route: str | None = None,
    client_ip: str | None = None,
    not_before: datetime | None = None,
) -> Flow[SignedUrl]:
    """A URL for plain HTTP GET (download), PUT (upload) or POST (HTML-form
    upload: send `form_fields`, then the bytes as the field "file") of one
    object. max_size bounds PUT and POST, min_size POST. route: "cdn",
    "gateway" or "store" (None: a GET's CDN if any); a CDN URL's client_ip,
    not_before: see SignUrlRequest."""
    request = storage_pb2.SignUrlRequest(
        bucket=self._bucket(bucket),
        key=key,
        method=_common.signed_method(method),
        route=_common.url_route(route),
        expires_in=_common.url_lifetime(expires_in),
        download=download,
        filename=filename or "",
        content_type=content_type or "",
        max_size=max_size,
        min_size=min_size,
        client_ip=client_ip or "",
        not_before=_common.timestamp(not_before),
    )
    return _flows.sign_url(request, self.timeout)


@operation(
    async_doc="""Copy an object, as Client.copy does (metadata or content_type replaces both)."""
)
def copy(
    self: ClientBase,
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
) -> Flow[ObjectInfo]:
    """Copy an object. Giving metadata or content_type replaces both.

    With either given, the copy gets exactly `metadata` (or none) and
    `content_type` (or the default); with neither, the source's are kept.
    The if_source_* conditions apply to the source, the others to the
    object replaced at the destination.
    """
    request = _common.copy_request(
        self._bucket(src_bucket),
        src_key,
        self._bucket(dst_bucket),
        dst_key,
        metadata=metadata,
        content_type=content_type,
        source_conditions=_conditions(
            if_match=if_source_match, if_generation_match=if_source_generation_match
        ),
        destination_conditions=_conditions(
            if_match=if_match,
            if_none_match=if_none_match,
            if_generation_match=if_generation_match,
        ),
    )
    return _flows.copy(request, self.timeout)


# ------------------------------------------------------------ listings
# Last in the module: from here on `list` is the operation, not the builtin.


@listing
def list_pages(
    self: ClientBase,
    prefix: str = "",
    *,
    bucket: str | None = None,
    delimiter: str = "",
    start_after: str = "",
    page_size: int = _common.MAX_PAGE_SIZE,
) -> Batches[ListPage]:
    """Pages of the listing, each with objects and rolled-up prefixes."""
    pages = self._list_flows(prefix, bucket, delimiter, start_after, page_size)
    return (_flows.alone(page) for page in pages)


@listing
def list(  # the method's public name, shadowing the builtin only here
    self: ClientBase,
    prefix: str = "",
    *,
    bucket: str | None = None,
    delimiter: str = "",
    start_after: str = "",
    page_size: int = _common.MAX_PAGE_SIZE,
) -> Batches[ObjectInfo]:
    """Objects in key order, following pages (prefixes: use list_pages)."""
    pages = self._list_flows(prefix, bucket, delimiter, start_after, page_size)
    return (_flows.objects(page) for page in pages)

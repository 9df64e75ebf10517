"""The synchronous client.

    with storagegw.Client("127.0.0.1:50051", bucket="photos") as client:
        client.put_file("2024/cat.jpg", "cat.jpg")
        client.download_file("2024/cat.jpg", "copy.jpg")

Every transfer is checked end to end: each chunk carries its CRC32C, and the
whole object's CRC32C and SHA-256 are compared after upload and download.
Errors are raised as storagegw.errors.StorageError subclasses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta

import grpc

from storagegw import _common
from storagegw._base import ClientBase
from storagegw._common import DEFAULT_CHUNK_SIZE, DEFAULT_TARGET, BinaryReader, ClosedOnExit
from storagegw._readers import ObjectReader
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy
from storagegw._sync_transport import SyncTransport
from storagegw._types import ListPage, ObjectInfo, Progress, SignedUrl, UploadSession, UploadStatus

__all__ = ["Client", "ObjectReader", "PutSource"]

PutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes]


class Client(ClientBase, ClosedOnExit):
    """A connection to a storage gateway.

    Args:
        target: host:port of the gateway.
        bucket: the default bucket ("" is the gateway's default bucket).
        timeout: deadline in seconds for each unary call (head, list, ...);
            transfers (put, get) have none, since any size is allowed.
        chunk_size: upload chunk size in bytes (at most 2 MiB).
        channel: an existing grpc.Channel to use instead of opening one;
            it is not closed by close().
        credentials: grpc.ChannelCredentials for TLS; plaintext when None.
        retry: the RetryPolicy of resumable transfers (put_file's resumable
            uploads, download_file); each call may give its own.
        resumable_threshold: put_file(resumable=None) uploads a path or a
            seekable file of at least this many bytes resumably.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        bucket: str = "",
        timeout: float | timedelta | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        retry: RetryPolicy | None = None,
        resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD,
    ) -> None:
        super().__init__(target, bucket, timeout, chunk_size, retry, resumable_threshold)
        self._transport = SyncTransport(target, channel, credentials, self.chunk_size)

    def close(self) -> None:
        self._transport.close()

    # ------------------------------------------------------------ uploads

    def put_bytes(
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
        return self._transport.run(
            self._put_bytes_flow(
                key,
                data,
                bucket,
                content_type,
                metadata,
                if_none_match,
                if_match,
                if_generation_match,
            )
        )

    def put_file(
        self,
        key: str,
        source: PutSource,
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
        CRC32C and SHA-256, computed while reading the source, go with the
        last message and are compared with the stored object's. Retrying is
        safe whatever the if_* conditions: the upload id makes every
        continuation idempotent. An error that retrying cannot fix (a failed
        precondition, say) is raised at once. On any failure, including
        KeyboardInterrupt or cancellation, the upload is aborted (best effort)
        unless keep_upload=True; to resume it later, get its id from
        on_upload_start (called with the UploadSession before any data is
        sent) and call resume_upload(). resumable=False sends one plain Put,
        never retried; a non-seekable source cannot be resumable.
        """
        return self._transport.run(
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

    def start_upload(
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
        """Start a resumable upload; send its data with resume_upload().

        The conditions are checked now and again when the upload commits.
        """
        return self._transport.run(
            self._start_upload_flow(
                key,
                bucket,
                content_type,
                metadata,
                size,
                if_none_match,
                if_match,
                if_generation_match,
            )
        )

    def query_upload(self, upload_id: str) -> UploadStatus:
        """The upload's persisted size, and its object once complete."""
        return self._transport.run(self._query_upload_flow(upload_id))

    def abort_upload(self, upload_id: str) -> bool:
        """Discard an unfinished upload; returns whether it existed."""
        return self._transport.run(self._abort_upload_flow(upload_id))

    def resume_upload(
        self,
        upload_id: str,
        source: PutSource,
        *,
        progress: Progress | None = None,
        retry: RetryPolicy | None = None,
    ) -> ObjectInfo:
        """Send `source` (a path, bytes or seekable file with the whole
        object) to an upload from its persisted size, retrying as put_file
        does, and return the verified object. The bytes the gateway already
        holds are read (not sent) for the whole-object checksums. The upload
        is the caller's: it is not aborted on failure (see abort_upload)."""
        return self._transport.run(self._resume_upload_flow(upload_id, source, progress, retry))

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
    ) -> ObjectReader:
        """Start reading an object (offset < 0 reads the last -offset bytes)."""
        request = self._get_request(
            key, bucket, offset, length, if_match, if_none_match, if_generation_match
        )
        return self._transport.open_reader(request, key)

    def get_bytes(
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
        request = self._get_request(
            key, bucket, offset, length, if_match, None, if_generation_match
        )
        with self._transport.open_reader(request, key) as reader:
            return reader.read()

    def download_file(
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
        """Download to `dest_path` atomically: it appears only once verified.

        The data goes to a temporary file beside the destination, is checked
        (every chunk and the whole object), flushed to disk and then renamed
        over `dest_path`; on any error the temporary file is removed. A Get
        broken by UNAVAILABLE, DEADLINE_EXCEEDED or a lost connection is
        re-issued from the bytes verified so far, on condition that the
        object is still the generation first seen (PreconditionFailed if it
        was replaced meanwhile); `retry` (or the client's policy) says how.
        """
        return self._transport.run(
            self._download_flow(
                key, dest_path, bucket, progress, if_match, if_generation_match, retry
            )
        )

    # ------------------------------------------------------------ metadata

    def head(
        self,
        key: str,
        *,
        bucket: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        return self._transport.run(
            self._head_flow(key, bucket, if_match, if_none_match, if_generation_match)
        )

    def exists(self, key: str, *, bucket: str | None = None) -> bool:
        """Whether the object exists (a missing bucket still raises BucketNotFound)."""
        return self._transport.run(self._exists_flow(key, bucket))

    def delete(
        self,
        key: str,
        *,
        bucket: str | None = None,
        if_match: str | None = None,
        if_generation_match: int | None = None,
    ) -> bool:
        """Delete the object; returns whether it existed."""
        return self._transport.run(self._delete_flow(key, bucket, if_match, if_generation_match))

    def list_pages(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        delimiter: str = "",
        start_after: str = "",
        page_size: int = _common.MAX_PAGE_SIZE,
    ) -> Iterator[ListPage]:
        """Pages of the listing, each with objects and rolled-up prefixes."""
        for page_flow in self._list_flows(prefix, bucket, delimiter, start_after, page_size):
            yield self._transport.run(page_flow)

    def list(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        delimiter: str = "",
        start_after: str = "",
        page_size: int = _common.MAX_PAGE_SIZE,
    ) -> Iterator[ObjectInfo]:
        """Objects in key order, following pages (prefixes: use list_pages)."""
        for page_flow in self._list_flows(prefix, bucket, delimiter, start_after, page_size):
            yield from self._transport.run(page_flow).objects

    def sign_url(
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
        return self._transport.run(
            self._sign_url_flow(
                key,
                bucket,
                method,
                expires_in,
                download,
                filename,
                content_type,
                max_size,
                min_size,
            )
        )

    def copy(
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
        """Copy an object. Giving metadata or content_type replaces both.

        With either given, the copy gets exactly `metadata` (or none) and
        `content_type` (or the default); with neither, the source's are kept.
        The if_source_* conditions apply to the source, the others to the
        object replaced at the destination.
        """
        return self._transport.run(
            self._copy_flow(
                src_key,
                dst_key,
                src_bucket,
                dst_bucket,
                metadata,
                content_type,
                if_source_match,
                if_source_generation_match,
                if_none_match,
                if_match,
                if_generation_match,
            )
        )

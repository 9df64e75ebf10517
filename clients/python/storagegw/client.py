"""The synchronous client.

    with storagegw.Client("127.0.0.1:50051", bucket="photos") as client:
        client.put_file("2024/cat.jpg", "cat.jpg")
        client.download_file("2024/cat.jpg", "copy.jpg")

Every transfer is checked end to end: each chunk carries its CRC32C, and the
whole object's CRC32C and SHA-256 are compared after upload and download.
Errors are raised as storagegw.errors.StorageError subclasses.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Self

import grpc

from storagegw import _common, _files, _resumable, _resumable_sync
from storagegw._common import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TARGET,
    BinaryReader,
    converted_rpc_errors,
)
from storagegw._readers import ObjectReader
from storagegw._retry import RetryPolicy
from storagegw._streams import PutStream
from storagegw._types import ListPage, ObjectInfo, SignedUrl, UploadSession, UploadStatus
from storagegw.errors import BucketNotFound, Cancelled, NotFound
from storagegw.v1 import storage_pb2, storage_pb2_grpc

__all__ = ["Client", "ObjectReader", "PutSource"]

PutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes]
Progress = Callable[[int], None]


class Client:
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
                channel = grpc.insecure_channel(target, options)
            else:
                channel = grpc.secure_channel(target, credentials, options)
        self._channel = channel
        self._stub = storage_pb2_grpc.StorageServiceStub(channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def _bucket(self, bucket: str | None) -> str:
        return self.bucket if bucket is None else bucket

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
        return self.put_file(
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
        conditions = _common.preconditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        if _resumable.wants_resumable(resumable, source, size, self.resumable_threshold):
            upload_source, file, content_type, size = _resumable.open_upload_source(
                source, self.chunk_size, content_type, size
            )
            with file or contextlib.nullcontext():
                spec = _common.put_spec(
                    self._bucket(bucket),
                    key,
                    content_type=content_type,
                    metadata=metadata,
                    size=size,
                    conditions=conditions,
                )
                return _resumable_sync.put_resumable(
                    self,
                    spec,
                    upload_source,
                    retry=retry or self.retry,
                    progress=progress,
                    keep_upload=keep_upload,
                    on_start=on_upload_start,
                )
        with _files.open_source(source, self.chunk_size, content_type, size) as opened:
            spec = _common.put_spec(
                self._bucket(bucket),
                key,
                content_type=opened.content_type,
                metadata=metadata,
                size=opened.size,
                conditions=conditions,
            )
            return self._put(PutStream(spec, self.chunk_size), opened.blocks, progress)

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
        return _resumable_sync.start_upload(self, spec)

    def query_upload(self, upload_id: str) -> UploadStatus:
        """The upload's persisted size, and its object once complete."""
        return _resumable_sync.upload_status(self, upload_id)

    def abort_upload(self, upload_id: str) -> bool:
        """Discard an unfinished upload; returns whether it existed."""
        return _resumable_sync.abort_upload(self, upload_id)

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
        opened, file, _, _ = _resumable.open_upload_source(source, self.chunk_size, None, None)
        with file or contextlib.nullcontext():
            return _resumable_sync.resume_upload(
                self, upload_id, opened, retry or self.retry, progress
            )

    def _put(
        self,
        stream: PutStream | _resumable.SegmentStream,
        blocks: Iterable[bytes],
        progress: Progress | None,
    ) -> ObjectInfo:
        # gRPC reads the request iterator on its own thread and only logs an
        # exception raised there; the source's error is kept to re-raise here,
        # and the call is cancelled: the gateway then discards what it has
        # received at once (finish_write, which commits, is never sent).
        source_errors: list[Exception] = []
        call_started = threading.Event()

        def requests() -> Iterator[storage_pb2.PutRequest]:
            yield stream.start()
            try:
                for block in blocks:
                    for request in stream.feed(block):
                        yield request
                        if progress is not None:
                            progress(stream.size)
                final = stream.finish()
            except Exception as exc:
                source_errors.append(exc)
                call_started.wait()  # `call` is assigned once this is set
                call.cancel()
                return
            yield final
            if progress is not None:
                progress(stream.size)

        call: grpc.Future[storage_pb2.PutResponse] = self._stub.Put.future(requests())
        call_started.set()
        try:
            with converted_rpc_errors():
                response = call.result()
        except BaseException as err:
            call.cancel()
            if source_errors:
                raise source_errors[0] from None
            if isinstance(err, grpc.FutureCancelledError):
                raise Cancelled("the upload was cancelled") from err
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
    ) -> ObjectReader:
        """Start reading an object (offset < 0 reads the last -offset bytes)."""
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
        return ObjectReader(self._stub.Get(request), key)

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
        with self.open(
            key,
            bucket=bucket,
            offset=offset,
            length=length,
            if_match=if_match,
            if_generation_match=if_generation_match,
        ) as reader:
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
        conditions = _common.preconditions(
            if_match=if_match, if_generation_match=if_generation_match
        )
        return _resumable_sync.download_file(
            self,
            key,
            dest_path,
            bucket=bucket,
            first_conditions=conditions,
            retry=retry or self.retry,
            progress=progress,
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
        conditions = _common.preconditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        request = _common.head_request(self._bucket(bucket), key, conditions)
        with converted_rpc_errors():
            response = self._stub.Head(request, timeout=self.timeout)
        return ObjectInfo.from_proto(response.object)

    def exists(self, key: str, *, bucket: str | None = None) -> bool:
        """Whether the object exists (a missing bucket still raises BucketNotFound)."""
        try:
            self.head(key, bucket=bucket)
        except BucketNotFound:
            raise
        except NotFound:
            return False
        return True

    def delete(
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
            response = self._stub.Delete(request, timeout=self.timeout)
        return response.existed

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
        request = _common.list_request(
            self._bucket(bucket),
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        )
        while True:
            with converted_rpc_errors():
                response = self._stub.List(request, timeout=self.timeout)
            page = ListPage.from_proto(response)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

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
        for page in self.list_pages(
            prefix,
            bucket=bucket,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        ):
            yield from page.objects

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
            response = self._stub.SignUrl(request, timeout=self.timeout)
        return SignedUrl.from_proto(response)

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
            response = self._stub.Copy(request, timeout=self.timeout)
        return ObjectInfo.from_proto(response.object)

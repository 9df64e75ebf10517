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
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TypeVar

import grpc

from storagegw import _operations as operations
from storagegw._base import ClientBase
from storagegw._common import DEFAULT_CHUNK_SIZE, DEFAULT_TARGET, BinaryReader, ClosedOnExit
from storagegw._credentials import CallAuth, TlsConfig, TokenProvider, channel_credentials
from storagegw._effects import Flow
from storagegw._readers import ObjectReader
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy
from storagegw._sync_transport import SyncTransport
from storagegw._types import ObjectInfo, Progress, UploadSession

__all__ = ["Client", "ObjectReader", "PutSource"]

PutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes]

_Result = TypeVar("_Result")


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
        tls: TlsConfig for TLS (and mutual TLS with a client certificate);
            plaintext when None (and no `credentials`).
        token: a bearer token sent with every call (`authorization` metadata).
        token_provider: instead of `token`, a function returning the current
            token, called before every call so that a refreshed token is
            used: it should cache its token and renew it shortly before it
            expires. When the gateway answers a unary call with TOKEN_EXPIRED,
            the provider is asked once more and, if its token changed, the
            call is sent again (refused at authentication, it was not done).
            A token is refused with a plaintext channel to a non-loopback
            target (it would travel in clear).
        credentials: grpc.ChannelCredentials, for TLS set up another way.
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
        tls: TlsConfig | None = None,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        super().__init__(target, bucket, timeout, chunk_size, retry, resumable_threshold)
        auth = CallAuth(token, token_provider)
        credentials = channel_credentials(target, tls, credentials, channel, auth.sends_token)
        self._transport = SyncTransport(target, channel, credentials, self.chunk_size, auth)

    def close(self) -> None:
        self._transport.close()

    def _run(self, flow: Flow[_Result]) -> _Result:
        """Run an operation's flow: the operations written once in
        _operations.py (put_bytes, head, ...) are this client's by it."""
        return self._transport.run(flow)

    # ------------------------------------------------------------ uploads

    put_bytes = operations.put_bytes

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
        return self._run(
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

    start_upload = operations.start_upload
    query_upload = operations.query_upload
    abort_upload = operations.abort_upload

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
        return self._run(self._resume_upload_flow(upload_id, source, progress, retry))

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

    get_bytes = operations.get_bytes
    download_file = operations.download_file

    # ------------------------------------------------------------ metadata

    head = operations.head
    exists = operations.exists
    delete = operations.delete

    list_pages = operations.list_pages
    list = operations.list
    sign_url = operations.sign_url
    copy = operations.copy

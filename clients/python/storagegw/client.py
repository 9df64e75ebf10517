"""The synchronous client.

    with storagegw.Client("127.0.0.1:50051", bucket="photos") as client:
        client.put_file("2024/cat.jpg", "cat.jpg")
        client.download_file("2024/cat.jpg", "copy.jpg")

Every transfer is checked end to end: each chunk carries its CRC32C, and the
whole object's CRC32C is compared after upload and download (and its SHA-256
too with verify_sha256).
Errors are raised as storagegw.errors.StorageError subclasses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

import grpc

from storagegw._common import DEFAULT_CHUNK_SIZE, DEFAULT_TARGET, ClosedOnExit, PutSource
from storagegw._credentials import CallAuth, TlsConfig, TokenProvider
from storagegw._effects import Flow, OpenRead
from storagegw._methods import Methods
from storagegw._readers import ObjectReader
from storagegw._resumable import DEFAULT_RESUMABLE_THRESHOLD
from storagegw._retry import RetryPolicy
from storagegw._sync_transport import SyncTransport

__all__ = ["Client", "ObjectReader", "PutSource"]

_Result = TypeVar("_Result")


class Client(Methods, ClosedOnExit):
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
        load_balancing: gRPC's load-balancing policy for the channel the client
            opens, e.g. "round_robin" with a target naming several replicas
            ("ipv4:127.0.0.1:50051,127.0.0.1:50052", or a DNS name with several
            addresses such as a Kubernetes headless Service): calls are spread
            over them, and a replica that stops answering is left out. None
            keeps gRPC's default (pick_first: one address at a time).
        verify_sha256: uploads compute the object's SHA-256 and have the
            gateway check it (and store it, whatever the bucket's choice),
            and downloads (get_bytes, open, download_file, in one stream)
            compute the SHA-256 of what they receive and compare the
            object's; each call may say otherwise. False by default: the
            client computes only the CRC32C, checked per chunk and for the
            whole object both ways, and the object's SHA-256 is the one the
            gateway computes, if its bucket does.
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
        load_balancing: str | None = None,
        verify_sha256: bool = False,
    ) -> None:
        super().__init__(
            target, bucket, timeout, chunk_size, retry, resumable_threshold, verify_sha256
        )
        auth = CallAuth(token, token_provider)
        plan = self._channel_plan(channel, credentials, tls, load_balancing, auth.sends_token)
        self._transport = SyncTransport(plan, self.chunk_size, auth)

    def close(self) -> None:
        self._transport.close()

    def _run(self, flow: Flow[_Result]) -> _Result:
        """Run an operation's flow: the operations written once in
        _operations.py and _transfers.py (put_bytes, head, ...), named in
        _methods.Methods, are this client's by it."""
        return self._transport.run(flow)

    def _open(self, read: OpenRead) -> ObjectReader:
        """The reader `open` returns (see _transfers.py)."""
        return self._transport.open_reader(read)

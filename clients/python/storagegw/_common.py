"""Pieces shared by the sync and async clients; no network or file I/O here.

The request messages, channel options, error conversion and content-type
guessing. What is sent when, and what is retried, is in _flows.py; upload
chunking with checksums and download verification in _streams.py.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from storagegw.errors import from_rpc_error
from storagegw.v1 import storage_pb2

VERSION = "0.1.0"
DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_CHUNK_SIZE = 1024 * 1024
# The contract caps a chunk at 2 MiB so each message fits gRPC's 4 MiB default.
MAX_CHUNK_SIZE = 2 * 1024 * 1024
# Headroom over the 4 MiB default in case a gateway is configured for larger chunks.
MAX_MESSAGE_SIZE = 8 * 1024 * 1024
MAX_PAGE_SIZE = 1000

_Channel = TypeVar("_Channel")

# gRPC's own retries, for a call the gateway never saw: a server refuses a new
# stream (HTTP/2 REFUSED_STREAM, reported as UNAVAILABLE) once a connection
# holds its max_concurrent_streams, and it counts streams it has answered but
# not yet freed, so a client even a little under that limit can be refused
# under load. gRPC retries only a call no answer has begun for, and only while
# the request fits its retry buffer (256 KiB by default): never a large upload
# half sent. Five attempts at most (gRPC's own cap), 50 ms to 1 s apart, random
# within each pause, bound what a retried call costs a gateway. No retry
# throttle: refusals come in bursts (a lag in the gateway refuses every new
# stream for a moment), and a throttle would give up on exactly those.
RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name}
                ],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)

_COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


class BinaryReader(Protocol):
    """A binary file object, as far as uploads need one."""

    def read(self, size: int, /) -> bytes: ...


# What put_file and resume_upload read from: Client's, and AsyncClient's,
# which also takes an async iterable (exported as storagegw.client.PutSource
# and storagegw.aio.AsyncPutSource).
PutSource = str | os.PathLike[str] | BinaryReader | Iterable[bytes]
AsyncPutSource = PutSource | AsyncIterable[bytes]


class ClosedOnExit:
    """`with thing:` calls thing.close() at the end (Client, ObjectReader)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosedOnExit:
    """`async with thing:` closes it at the end (AsyncClient, AsyncObjectReader)."""

    async def _close_on_exit(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close_on_exit()


@contextlib.contextmanager
def converted_rpc_errors() -> Iterator[None]:
    """Raise grpc.RpcError (sync or grpc.aio) as the matching StorageError."""
    try:
        yield
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err


def channel_options(
    load_balancing: str | None = None, retry_refused: bool = True
) -> list[tuple[str, int | str]]:
    """retry_refused: gRPC retries a call refused before any answer
    (RETRY_SERVICE_CONFIG); off for a client made with RetryPolicy.no_retry()."""
    balancing: list[tuple[str, int | str]] = []
    retries: list[tuple[str, int | str]] = (
        [("grpc.service_config", RETRY_SERVICE_CONFIG)]
        if retry_refused
        else [("grpc.enable_retries", 0)]
    )
    if load_balancing is not None:
        # gRPC's own client-side policy ("round_robin" spreads calls over every
        # address the target resolves to, and skips one that stops answering).
        balancing = [("grpc.lb_policy_name", load_balancing)]
    return [
        *balancing,
        ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
        # Detect a dead connection during a long transfer within ~80 s. Pings
        # stop when no call is active, and a minute between them stays clear of
        # servers' ping-abuse limits while a call is waiting without data.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.primary_user_agent", f"storagegw-python/{VERSION}"),
        # The gateway's own flow-control settings: a fixed 4 MiB window per
        # stream keeps what a download may buffer here bounded too.
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", 4 * 1024 * 1024),
        *retries,
    ]


@dataclass(frozen=True)
class ChannelPlan(Generic[_Channel]):
    """The channel a transport runs on: the caller's own, or how to open one
    (Client and AsyncClient make it alike; only the grpc module differs)."""

    target: str
    channel: _Channel | None
    credentials: grpc.ChannelCredentials | None
    load_balancing: str | None = None
    retry_refused: bool = True

    def open(
        self,
        insecure: Callable[[str, list[tuple[str, int | str]]], _Channel],
        secure: Callable[[str, grpc.ChannelCredentials, list[tuple[str, int | str]]], _Channel],
    ) -> tuple[_Channel, bool]:
        """The channel (grpc or grpc.aio, by the functions given), and whether
        the transport owns it: a caller's channel is theirs to close. An opened
        one has the client's options; TLS when credentials are given."""
        if self.channel is not None:
            return self.channel, False
        options = channel_options(self.load_balancing, self.retry_refused)
        if self.credentials is None:
            return insecure(self.target, options), True
        return secure(self.target, self.credentials, options), True


def check_chunk_size(chunk_size: int) -> int:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE} bytes")
    return chunk_size


def source_path(source: object) -> str | None:
    """The file system path when an upload source is one, else None."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return path if isinstance(path, str) else os.fsdecode(path)
    return None


def guess_content_type(path: str) -> str:
    """The media type for a file name; "" (the gateway's default) when unknown."""
    media_type, encoding = mimetypes.guess_type(path, strict=False)
    if encoding is not None:
        # "x.tar.gz" is gzip data: its inner type would mislead HTTP clients.
        return _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return media_type or ""


def seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


# ---------------------------------------------------------------- requests


def preconditions(
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_generation_match: int | None = None,
    if_generation_not_match: int | None = None,
) -> storage_pb2.Preconditions | None:
    """A Preconditions message, or None when no condition is given."""
    message = storage_pb2.Preconditions(
        if_match=if_match or "",
        if_none_match=if_none_match or "",
        if_generation_match=if_generation_match,
        if_generation_not_match=if_generation_not_match,
    )
    return message if message.ByteSize() else None


def put_spec(
    bucket: str,
    key: str,
    *,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    size: int | None = None,
    conditions: storage_pb2.Preconditions | None = None,
    compute_sha256: bool = False,
) -> storage_pb2.PutSpec:
    if size is not None and size < 0:
        raise ValueError("size must not be negative")
    return storage_pb2.PutSpec(
        bucket=bucket,
        key=key,
        content_type=content_type or "",
        metadata=dict(metadata or {}),
        size=size,
        preconditions=conditions,
        compute_sha256=compute_sha256,
    )


def get_request(
    bucket: str,
    key: str,
    *,
    offset: int = 0,
    length: int | None = None,
    conditions: storage_pb2.Preconditions | None = None,
) -> storage_pb2.GetRequest:
    """offset < 0 reads the last -offset bytes; length None reads to the end."""
    if length is not None and length < 0:
        raise ValueError("length must not be negative")
    return storage_pb2.GetRequest(
        bucket=bucket, key=key, read_offset=offset, read_limit=length, preconditions=conditions
    )


def head_request(
    bucket: str, key: str, conditions: storage_pb2.Preconditions | None = None
) -> storage_pb2.HeadRequest:
    return storage_pb2.HeadRequest(bucket=bucket, key=key, preconditions=conditions)


def delete_request(
    bucket: str, key: str, conditions: storage_pb2.Preconditions | None = None
) -> storage_pb2.DeleteRequest:
    return storage_pb2.DeleteRequest(bucket=bucket, key=key, preconditions=conditions)


def list_request(
    bucket: str,
    *,
    prefix: str = "",
    delimiter: str = "",
    start_after: str = "",
    page_size: int = MAX_PAGE_SIZE,
    page_token: str = "",
) -> storage_pb2.ListRequest:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return storage_pb2.ListRequest(
        bucket=bucket,
        prefix=prefix,
        delimiter=delimiter,
        start_after=start_after,
        page_size=page_size,
        page_token=page_token,
    )


_SIGNED_METHODS = {
    "GET": storage_pb2.SIGNED_METHOD_GET,
    "PUT": storage_pb2.SIGNED_METHOD_PUT,
    "POST": storage_pb2.SIGNED_METHOD_POST,
}


def signed_method(method: str) -> storage_pb2.SignedMethod.ValueType:
    """sign_url's `method`, any case."""
    signed = _SIGNED_METHODS.get(method.upper())
    if signed is None:
        raise ValueError(f"method must be GET, PUT or POST, not {method!r}")
    return signed


def url_route(route: str | None) -> storage_pb2.UrlRoute.ValueType:
    """sign_url's `route`, any case; None for the gateway's choice."""
    url_route = _ROUTES.get((route or "").lower())
    if url_route is None:
        raise ValueError(f"route must be cdn, gateway or store, not {route!r}")
    return url_route


def url_lifetime(expires_in: float | timedelta | None) -> Duration | None:
    """sign_url's `expires_in`, in seconds or a timedelta; None leaves the
    lifetime to the gateway's default."""
    if expires_in is None:
        return None
    delta = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=expires_in)
    if delta <= timedelta(0):
        raise ValueError("expires_in must be positive")
    lifetime = Duration()
    lifetime.FromTimedelta(delta)
    return lifetime


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


_ROUTES = {
    "": storage_pb2.URL_ROUTE_UNSPECIFIED,
    "cdn": storage_pb2.URL_ROUTE_CDN,
    "gateway": storage_pb2.URL_ROUTE_GATEWAY,
    "store": storage_pb2.URL_ROUTE_STORE,
}


def copy_request(
    source_bucket: str,
    source_key: str,
    destination_bucket: str,
    destination_key: str,
    *,
    metadata: Mapping[str, str] | None = None,
    content_type: str | None = None,
    source_conditions: storage_pb2.Preconditions | None = None,
    destination_conditions: storage_pb2.Preconditions | None = None,
) -> storage_pb2.CopyRequest:
    # The contract replaces content type and metadata together or not at all.
    replace = metadata is not None or content_type is not None
    return storage_pb2.CopyRequest(
        source_bucket=source_bucket,
        source_key=source_key,
        destination_bucket=destination_bucket,
        destination_key=destination_key,
        replace_metadata=replace,
        content_type=content_type or "",
        metadata=dict(metadata or {}),
        source_preconditions=source_conditions,
        destination_preconditions=destination_conditions,
    )

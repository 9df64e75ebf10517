"""How the clients prove who they are and whom they talk to: TLS and bearer tokens.

TLS (TlsConfig) makes the channel a secure one: the gateway's certificate is
checked against the given roots (or the system's), and with a client
certificate and key the gateway can identify the caller (mutual TLS).

Each call also carries the caller's trace context, when there is one
(storagegw/_tracing.py).

A token goes with every call as `authorization: Bearer <token>` metadata,
added by the transport to each call rather than by gRPC call credentials:
call credentials are refused over plaintext channels, which tests and local
setups on loopback use, they cannot await an async token provider, and they
cannot be added to a channel the caller made. To keep the token from going
in clear over a network, a token with a plaintext channel the client opens
itself is refused unless the target is a loopback address.

The token itself never appears in a repr, a log line or an exception.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import grpc

from storagegw._tracing import trace_metadata
from storagegw.errors import TokenExpired

__all__ = [
    "AsyncCallAuth",
    "AsyncTokenProvider",
    "CallAuth",
    "Metadata",
    "TlsConfig",
    "TokenProvider",
    "channel_credentials",
]

_T = TypeVar("_T")

Metadata: TypeAlias = tuple[tuple[str, str], ...]
# Returns the current token; called before every call (see Client: it should cache).
TokenProvider: TypeAlias = Callable[[], str]
AsyncTokenProvider: TypeAlias = Callable[[], str | Awaitable[str]]
PemSource: TypeAlias = str | os.PathLike[str] | bytes


@dataclass(frozen=True)
class TlsConfig:
    """TLS to the gateway: Client(target, tls=TlsConfig(ca="ca.pem")).

    Args:
        ca: the PEM root certificates that verify the gateway's certificate,
            as a file path or the PEM bytes; None: the system's roots.
        cert: the client's PEM certificate chain (path or bytes), for mutual
            TLS; the gateway then knows the caller by it.
        key: the private key of `cert` (path or bytes); both or neither.

    Files are read when a client is made, so a renewed certificate is used
    by the next client.
    """

    ca: PemSource | None = None
    cert: PemSource | None = None
    key: PemSource | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TlsConfig: give both cert and key (mutual TLS), or neither")

    def __repr__(self) -> str:
        # Paths help; the bytes of a key are a secret, and of a certificate only noise.
        return (
            f"TlsConfig(ca={_describe(self.ca)}, cert={_describe(self.cert)}, "
            f"key={_describe(self.key, secret=True)})"
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """gRPC's SSL credentials, the files read now."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca),
            private_key=_read_pem(self.key),
            certificate_chain=_read_pem(self.cert),
        )


def _describe(source: PemSource | None, *, secret: bool = False) -> str:
    if source is None:
        return "None"
    if isinstance(source, bytes):
        return "<hidden>" if secret else f"<{len(source)} bytes>"
    return repr(os.fspath(source))


def _read_pem(source: PemSource | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as file:
        return file.read()


def channel_credentials(
    target: str,
    tls: TlsConfig | None,
    credentials: grpc.ChannelCredentials | None,
    channel: object | None,
    sends_token: bool,
) -> grpc.ChannelCredentials | None:
    """The credentials of the channel a client opens (None: plaintext),
    refusing a token that would cross a network in clear."""
    if tls is not None and credentials is not None:
        raise ValueError("give tls= or credentials=, not both")
    if channel is not None and tls is not None:
        raise ValueError("tls= is for the channel the client opens: give it or channel=")
    if tls is not None:
        credentials = tls.channel_credentials()
    if sends_token and credentials is None and channel is None and not is_loopback(target):
        raise ValueError(
            f"a token would be sent in clear to {target}: connect with TLS (tls=TlsConfig(...)) "
            "or, on a network you trust, pass your own channel="
        )
    return credentials


def is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine (127.0.0.0/8, ::1, localhost,
    or a Unix socket)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    address = target.removeprefix("dns:").lstrip("/").removeprefix("ipv4:").removeprefix("ipv6:")
    if address.startswith("["):  # [::1]:50051
        host = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        host = address.partition(":")[0]
    else:
        host = address  # no port, or an IPv6 address without brackets
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(token: object) -> str:
    # The messages never show the value: it may be a token gone wrong.
    if not isinstance(token, str):
        raise TypeError(f"a token must be a str, not {type(token).__name__}")
    if not token or token != token.strip() or any(c in token for c in "\r\n\0"):
        raise ValueError("a token must be non-empty, without surrounding spaces or line breaks")
    return token


def _metadata(token: str | None) -> Metadata | None:
    """A call's metadata: the token, and the caller's trace context if any."""
    traced = trace_metadata()
    if token is None:
        return traced or None
    return (("authorization", f"Bearer {_checked(token)}"), *traced)


class _Auth:
    """What the sync and async call authorizers share."""

    def __init__(self, token: str | None, provider: object | None) -> None:
        if token is not None and provider is not None:
            raise ValueError("give token= or token_provider=, not both")
        if provider is not None and not callable(provider):
            raise TypeError("token_provider must be callable")
        self._token = None if token is None else _checked(token)
        self._provider = provider

    @property
    def sends_token(self) -> bool:
        return self._token is not None or self._provider is not None

    def __repr__(self) -> str:
        kind = "provider" if self._provider is not None else "token" if self._token else "none"
        return f"{type(self).__name__}({kind})"

    def _retries(self, sent: Metadata | None, fresh: Metadata | None) -> bool:
        """Whether a call refused with TOKEN_EXPIRED is worth one more try: a
        provider gave another token (the same one would be refused again)."""
        return self._provider is not None and fresh is not None and fresh != sent


class CallAuth(_Auth):
    """The sync Client's per-call metadata: a static token or a provider's."""

    def __init__(self, token: str | None, provider: TokenProvider | None) -> None:
        super().__init__(token, provider)
        self._sync_provider = provider

    def metadata(self) -> Metadata | None:
        if self._sync_provider is not None:
            return _metadata(self._sync_provider())
        return _metadata(self._token)

    def call(self, send: Callable[[Metadata | None], _T]) -> _T:
        """send(metadata), once more with a fresh token after TOKEN_EXPIRED.

        A call refused at authentication was not carried out, so sending it
        again is safe whatever it does."""
        sent = self.metadata()
        try:
            return send(sent)
        except TokenExpired:
            fresh = self.metadata() if self._provider is not None else None
            if not self._retries(sent, fresh):
                raise
        return send(fresh)


class AsyncCallAuth(_Auth):
    """AsyncClient's per-call metadata: the provider may be sync or async."""

    def __init__(self, token: str | None, provider: AsyncTokenProvider | None) -> None:
        super().__init__(token, provider)
        self._any_provider = provider

    async def metadata(self) -> Metadata | None:
        if self._any_provider is None:
            return _metadata(self._token)
        token = self._any_provider()
        if inspect.isawaitable(token):
            token = await token
        return _metadata(token)

    async def call(self, send: Callable[[Metadata | None], Awaitable[_T]]) -> _T:
        """As CallAuth.call, awaiting."""
        sent = await self.metadata()
        try:
            return await send(sent)
        except TokenExpired:
            fresh = await self.metadata() if self._provider is not None else None
            if not self._retries(sent, fresh):
                raise
        return await send(fresh)

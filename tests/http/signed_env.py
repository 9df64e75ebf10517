"""A signed-URL listener for tests of gateway/signing.py served by gateway/http_server.py.

running() starts it inside the test's event loop on 127.0.0.1:0, on MemoryBackend or
LocalBackend, with an httpx client to drive it. Time is a clock object the test moves,
so expiry needs no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from gateway.backends.base import Backend, ObjectReader
from gateway.backends.local.backend import LocalBackend
from gateway.backends.memory.backend import MemoryBackend
from gateway.core.buckets import Buckets
from gateway.core.ingest import Expected, Incoming, store
from gateway.core.signing import UrlSigner
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import NO_CONDITIONS, ObjectMeta, WriteOptions
from gateway.http.listener import ConnectionLimits, HttpListener
from gateway.http.server import make_app

SECRET = b"0123456789abcdef0123456789abcdef"
DATA = bytes(range(256)) * 800  # 204800 bytes: several 64 KiB chunks
CHUNK = 64 * 1024
GATEWAY_MAX = 512 * 1024


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    client: httpx.AsyncClient
    signer: UrlSigner
    clock: Clock
    backend: Backend  # bucket "alpha"
    other: Backend  # bucket "beta", same kind
    calls: list[str] = field(default_factory=list)  # driver reads and writes
    listener: HttpListener | None = None

    @property
    def port(self) -> int:
        assert self.listener is not None
        return self.listener.port

    async def put_object(self, key: str, data: bytes, content_type: str = "text/plain") -> None:
        await self._store(self.backend, key, data, content_type)

    async def _store(self, backend: Backend, key: str, data: bytes, content_type: str) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        await store(
            backend, key, WriteOptions(content_type=content_type), Incoming(chunks(), Expected())
        )

    async def read(self, key: str, backend: Backend | None = None) -> tuple[ObjectMeta, bytes]:
        reader = await (backend or self.backend).open_read(key, 0, None, NO_CONDITIONS)
        try:
            return reader.meta, b"".join([c async for c in reader.chunks(CHUNK)])
        finally:
            await reader.close()


def _make_backend(kind: str, root: Path, **options: Any) -> Backend:
    if kind == "memory":
        return MemoryBackend(**options)
    root.mkdir(parents=True)
    return LocalBackend(root, **options)


def _record_calls(backend: Backend, name: str, calls: list[str]) -> None:
    """Note every open_read/open_write so tests can assert nothing was touched."""
    original_read, original_write = backend.open_read, backend.open_write

    async def open_read(*args: Any, **kwargs: Any) -> ObjectReader:
        calls.append(f"{name}.read")
        return await original_read(*args, **kwargs)

    async def open_write(*args: Any, **kwargs: Any) -> Any:
        calls.append(f"{name}.write")
        return await original_write(*args, **kwargs)

    backend.open_read = open_read  # type: ignore[method-assign]
    backend.open_write = open_write  # type: ignore[method-assign]


@asynccontextmanager
async def running(
    kind: str,
    tmp_path: Path,
    *,
    max_object_size: int = GATEWAY_MAX,
    idle_timeout: float = 30.0,
    limits: ConnectionLimits | None = None,
    **options: Any,
) -> AsyncIterator[Env]:
    alpha = _make_backend(kind, tmp_path / "alpha", **options)
    beta = _make_backend(kind, tmp_path / "beta")
    calls: list[str] = []
    _record_calls(alpha, "alpha", calls)
    _record_calls(beta, "beta", calls)
    buckets = Buckets({"alpha": alpha, "beta": beta}, default="alpha")
    clock = Clock(1_000_000.0)
    signer = UrlSigner(SECRET, "http://unbound", clock=clock)
    app = make_app(
        buckets,
        signer,
        chunk_size=CHUNK,
        max_object_size=max_object_size,
        idle_timeout=idle_timeout,
    )
    listener = await HttpListener.start(app, "127.0.0.1", 0, limits or ConnectionLimits())
    signer.base_url = f"http://127.0.0.1:{listener.port}"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Env(client, signer, clock, alpha, beta, calls, listener=listener)
    finally:
        await listener.stop(grace=5)
        await buckets.close()


def with_query(url: str, **changes: str | None) -> str:
    """url with query parameters replaced (None removes one)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_path(url: str, old: str, new: str) -> str:
    parts = urlsplit(url)
    assert old in parts.path
    return urlunsplit(parts._replace(path=parts.path.replace(old, new)))


async def chunked_body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def assert_missing(backend: Backend, key: str) -> None:
    with pytest.raises(GatewayError) as caught:
        await backend.head(key)
    assert caught.value.reason == Reason.OBJECT_NOT_FOUND

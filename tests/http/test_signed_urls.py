"""Signed URLs over real HTTP: gateway/signing.py served by gateway/http_server.py.

Each storage test runs against MemoryBackend and LocalBackend. The listener is
started inside the test's event loop on 127.0.0.1:0 and driven with httpx.
Time is a clock object the test moves, so expiry needs no sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
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
from gateway.core.signing import SignatureError, UrlSigner
from gateway.core.url_secret import load_or_create_secrets
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


@pytest.fixture(params=["memory", "local"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(request.param, tmp_path) as environment:
        yield environment


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


async def _chunked(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def assert_missing(backend: Backend, key: str) -> None:
    with pytest.raises(GatewayError) as caught:
        await backend.head(key)
    assert caught.value.reason == Reason.OBJECT_NOT_FOUND


# --- GET and HEAD ------------------------------------------------------------


async def test_get_whole_object(env: Env) -> None:
    await env.put_object("docs/report.txt", DATA, "text/plain")
    meta = await env.backend.head("docs/report.txt")
    signed = env.signer.sign("alpha", "docs/report.txt", "GET", 60)
    assert signed.method == "GET"
    assert signed.expire_time_unix == 1_000_060

    response = await env.client.get(signed.url)

    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["ETag"] == f'"{meta.etag}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"].endswith(" GMT")
    assert "Content-Disposition" not in response.headers


async def test_get_key_needing_escapes(env: Env) -> None:
    key = "dossier/résumé été+50% #1?.txt"
    await env.put_object(key, b"hello")
    response = await env.client.get(env.signer.sign("alpha", key, "GET", 60).url)
    assert response.status_code == 200
    assert response.content == b"hello"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=10-19", 10, 20),
        ("bytes=204000-", 204000, len(DATA)),
        ("bytes=-5", len(DATA) - 5, len(DATA)),
        ("bytes=100000-999999999", 100000, len(DATA)),  # clamped to the end
        ("bytes=-999999999", 0, len(DATA)),  # suffix longer than the object
    ],
)
async def test_get_range(env: Env, header: str, start: int, end: int) -> None:
    await env.put_object("blob", DATA)
    response = await env.client.get(
        env.signer.sign("alpha", "blob", "GET", 60).url, headers={"Range": header}
    )
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(end - start)


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2"])
async def test_get_multiple_or_malformed_ranges_serve_whole_object(env: Env, header: str) -> None:
    await env.put_object("blob", DATA)
    response = await env.client.get(
        env.signer.sign("alpha", "blob", "GET", 60).url, headers={"Range": header}
    )
    assert response.status_code == 200
    assert response.content == DATA
    assert "Content-Range" not in response.headers


@pytest.mark.parametrize(
    "header", [f"bytes={len(DATA)}-", f"bytes={len(DATA) + 10}-{len(DATA) + 20}", "bytes=-0"]
)
async def test_get_unsatisfiable_range(env: Env, header: str) -> None:
    await env.put_object("blob", DATA)
    response = await env.client.get(
        env.signer.sign("alpha", "blob", "GET", 60).url, headers={"Range": header}
    )
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert DATA[:16] not in response.content


async def test_head(env: Env) -> None:
    await env.put_object("blob", DATA, "application/x-thing")
    meta = await env.backend.head("blob")
    response = await env.client.head(env.signer.sign("alpha", "blob", "GET", 60).url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Content-Type"] == "application/x-thing"
    assert response.headers["ETag"] == f'"{meta.etag}"'


async def test_get_missing_object_is_404(env: Env) -> None:
    response = await env.client.get(env.signer.sign("alpha", "nope", "GET", 60).url)
    assert response.status_code == 404
    assert response.headers["X-Sgw-Reason"] == "OBJECT_NOT_FOUND"


async def test_invalid_key_is_400(env: Env) -> None:
    url = env.signer.sign("alpha", "a/b", "GET", 60).url
    response = await env.client.get(with_path(url, "/o/a/b", "/o/a//b"))
    assert response.status_code == 400
    assert response.headers["X-Sgw-Reason"] == "INVALID_KEY"


@pytest.mark.parametrize(
    ("key", "filename", "ascii_name", "encoded"),
    [
        ("exports/2024/data.csv", "", "data.csv", "data.csv"),
        ("x", "Prüfbericht 2024.pdf", "Pr_fbericht 2024.pdf", "Pr%C3%BCfbericht%202024.pdf"),
        ("y", 'say "hi".txt', "say _hi_.txt", "say%20%22hi%22.txt"),
    ],
)
async def test_download_sets_content_disposition(
    env: Env, key: str, filename: str, ascii_name: str, encoded: str
) -> None:
    await env.put_object(key, b"a,b\n")
    signed = env.signer.sign("alpha", key, "GET", 60, download=True, filename=filename)
    response = await env.client.get(signed.url)
    assert response.status_code == 200
    assert response.content == b"a,b\n"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"
    )


async def test_reader_closed_when_client_disconnects(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = os.urandom(8 * 1024 * 1024)
    await env.put_object("big", big)
    closed = asyncio.Event()
    open_read = env.backend.open_read

    async def tracking_open_read(*args: Any, **kwargs: Any) -> ObjectReader:
        reader = await open_read(*args, **kwargs)
        close = reader.close

        async def tracked_close() -> None:
            closed.set()
            await close()

        monkeypatch.setattr(reader, "close", tracked_close)
        return reader

    monkeypatch.setattr(env.backend, "open_read", tracking_open_read)
    url = env.signer.sign("alpha", "big", "GET", 60).url
    async with env.client.stream("GET", url) as response:
        assert response.status_code == 200
        async for first in response.aiter_raw():
            assert first
            break
    await asyncio.wait_for(closed.wait(), timeout=30)


# --- PUT ---------------------------------------------------------------------


async def test_put_then_read_back(env: Env) -> None:
    signed = env.signer.sign("alpha", "up/load.bin", "PUT", 60, content_type="image/png")
    assert signed.method == "PUT"
    assert signed.headers == {"Content-Type": "image/png"}

    response = await env.client.put(signed.url, content=DATA, headers=signed.headers)

    assert response.status_code == 200, response.text
    meta, data = await env.read("up/load.bin")
    assert data == DATA
    assert meta.content_type == "image/png"
    assert meta.sha256 == hashlib.sha256(DATA).digest()
    body = response.json()
    assert body["key"] == "up/load.bin"
    assert body["size"] == len(DATA)
    assert body["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert body["etag"] == meta.etag
    assert body["generation"] == meta.generation
    assert body["crc32c"] == meta.crc32c
    assert response.headers["ETag"] == f'"{meta.etag}"'
    # And back out through a signed GET.
    again = await env.client.get(env.signer.sign("alpha", "up/load.bin", "GET", 60).url)
    assert again.content == DATA
    assert again.headers["Content-Type"] == "image/png"


async def test_put_chunked_without_bound_content_type(env: Env) -> None:
    signed = env.signer.sign("alpha", "c", "PUT", 60)
    assert signed.headers == {}
    response = await env.client.put(
        signed.url, content=_chunked(b"abc", b"", b"def"), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    meta, data = await env.read("c")
    assert (data, meta.content_type) == (b"abcdef", "text/csv")


@pytest.mark.parametrize("sent", [{"Content-Type": "text/html"}, {}])
async def test_put_with_other_content_type_is_403(env: Env, sent: dict[str, str]) -> None:
    signed = env.signer.sign("alpha", "pic", "PUT", 60, content_type="image/png")
    response = await env.client.put(signed.url, content=b"<html>", headers=sent)
    assert response.status_code == 403
    await assert_missing(env.backend, "pic")
    assert env.calls == []


async def test_put_over_bound_max_size_is_413(env: Env) -> None:
    signed = env.signer.sign("alpha", "small", "PUT", 60, max_size=10)
    declared = await env.client.put(signed.url, content=b"x" * 11)
    assert declared.status_code == 413
    assert declared.headers["X-Sgw-Reason"] == "OBJECT_TOO_LARGE"
    assert env.calls == []  # refused on Content-Length, before opening a write
    chunked = await env.client.put(signed.url, content=_chunked(b"x" * 6, b"x" * 5))
    assert chunked.status_code == 413
    assert chunked.headers["X-Sgw-Reason"] == "OBJECT_TOO_LARGE"
    await assert_missing(env.backend, "small")
    exact = await env.client.put(signed.url, content=_chunked(b"x" * 6, b"x" * 4))
    assert exact.status_code == 200
    assert (await env.read("small"))[1] == b"x" * 10


async def test_put_over_gateway_max_is_413(env: Env) -> None:
    signed = env.signer.sign("alpha", "huge", "PUT", 60, max_size=10 * GATEWAY_MAX)
    body = b"z" * (GATEWAY_MAX // 2)
    response = await env.client.put(signed.url, content=_chunked(body, body, b"z"))
    assert response.status_code == 413
    await assert_missing(env.backend, "huge")


async def test_quota_exceeded_is_507(tmp_path: Path) -> None:
    async with running("memory", tmp_path, quota_bytes=100) as env:
        signed = env.signer.sign("alpha", "q", "PUT", 60)
        response = await env.client.put(signed.url, content=_chunked(b"q" * 60, b"q" * 60))
        assert response.status_code == 507
        assert response.headers["X-Sgw-Reason"] == "QUOTA_EXCEEDED"
        await assert_missing(env.backend, "q")


# --- refused URLs -------------------------------------------------------------


async def test_expired_url_is_403(env: Env) -> None:
    await env.put_object("k", b"data")
    signed = env.signer.sign("alpha", "k", "GET", 1)
    assert signed.expire_time_unix == 1_000_001
    env.clock.now = 1_000_000.5
    assert (await env.client.get(signed.url)).status_code == 200
    env.clock.now = 1_000_001
    env.calls.clear()
    response = await env.client.get(signed.url)
    assert response.status_code == 403
    assert "expired" in response.text
    assert env.calls == []


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda url: with_query(url, X_Sgw_Signature="0" * 64), id="signature"),
        pytest.param(lambda url: with_query(url, X_Sgw_Signature=None), id="no-signature"),
        pytest.param(lambda url: with_query(url, X_Sgw_Expires="9999999999"), id="expiry"),
        pytest.param(lambda url: with_query(url, X_Sgw_Download="1"), id="added-param"),
        pytest.param(lambda url: with_path(url, "/o/k", "/o/other"), id="other-key"),
        pytest.param(lambda url: with_path(url, "/b/alpha/", "/b/beta/"), id="other-bucket"),
    ],
)
async def test_tampered_get_is_403(env: Env, tamper: Callable[[str], str]) -> None:
    await env.put_object("k", b"secret data")
    await env.put_object("other", b"other data")
    await env._store(env.other, "k", b"beta data", "text/plain")
    env.calls.clear()
    url = env.signer.sign("alpha", "k", "GET", 60).url
    response = await env.client.get(tamper(url))
    assert response.status_code == 403
    assert b"data" not in response.content
    assert response.headers["X-Sgw-Reason"] == "PERMISSION_DENIED"
    assert env.calls == []


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda url: with_query(url, X_Sgw_Max_Size=None), id="unbound-max-size"),
        pytest.param(lambda url: with_path(url, "/o/k", "/o/other"), id="other-key"),
        pytest.param(lambda url: with_path(url, "/b/alpha/", "/b/beta/"), id="other-bucket"),
    ],
)
async def test_tampered_put_is_403(env: Env, tamper: Callable[[str], str]) -> None:
    url = env.signer.sign("alpha", "k", "PUT", 60, max_size=100).url
    response = await env.client.put(tamper(url), content=b"payload")
    assert response.status_code == 403
    assert env.calls == []
    for backend, key in [(env.backend, "k"), (env.backend, "other"), (env.other, "k")]:
        await assert_missing(backend, key)


async def test_put_to_get_url_is_403(env: Env) -> None:
    await env.put_object("k", b"original")
    env.calls.clear()
    response = await env.client.put(
        env.signer.sign("alpha", "k", "GET", 60).url, content=b"overwritten"
    )
    assert response.status_code == 403
    assert env.calls == []
    assert (await env.read("k"))[1] == b"original"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_read_with_put_url_is_403(env: Env, method: str) -> None:
    await env.put_object("k", b"secret data")
    env.calls.clear()
    response = await env.client.request(method, env.signer.sign("alpha", "k", "PUT", 60).url)
    assert response.status_code == 403
    assert b"secret" not in response.content
    assert env.calls == []


async def test_logs_never_show_the_signature(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await env.put_object("k", b"data")
    signed = env.signer.sign("alpha", "k", "GET", 60)
    signature = dict(parse_qsl(urlsplit(signed.url).query))["X-Sgw-Signature"]
    ok = await env.client.get(signed.url)
    bad = await env.client.put(signed.url, content=b"x")
    assert (ok.status_code, bad.status_code) == (200, 403)
    assert signature not in bad.text
    # The server's records (httpx, the client, logs whole URLs on its own).
    server_log = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("gateway", "aiohttp"))
    )
    assert '"GET /v1/b/alpha/o/k" 200' in server_log  # the access log is on
    assert '"PUT /v1/b/alpha/o/k" 403' in server_log
    assert signature not in server_log
    assert "X-Sgw" not in server_log


# --- signing options ----------------------------------------------------------


@pytest.mark.parametrize("expires_in", [0, 0.5, -5, 7 * 86400 + 1, float("inf")])
def test_expiry_out_of_bounds(expires_in: float) -> None:
    signer = UrlSigner(SECRET, "http://gw")
    with pytest.raises(GatewayError) as caught:
        signer.sign("alpha", "k", "GET", expires_in)
    assert caught.value.reason == Reason.INVALID_EXPIRY
    assert "1 second" in caught.value.message
    assert "604800" in caught.value.message


def test_expiry_bounds_and_default() -> None:
    clock = Clock(1000.0)
    signer = UrlSigner(SECRET, "http://gw/", clock=clock)
    assert signer.sign("alpha", "k", "GET", 1).expire_time_unix == 1001
    assert signer.sign("alpha", "k", "GET", 7 * 86400).expire_time_unix == 1000 + 7 * 86400
    default = signer.sign("alpha", "k", "PUT", None)
    assert default.expire_time_unix == 1000 + 3600
    assert default.url.startswith("http://gw/v1/b/alpha/o/k?")


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("GET", {"content_type": "text/plain"}),
        ("GET", {"max_size": 5}),
        ("GET", {"filename": "f.txt"}),  # filename without download
        ("PUT", {"download": True}),
        ("PUT", {"filename": "f.txt"}),
        ("PUT", {"max_size": -1}),
        ("PUT", {"content_type": "text/plain\r\nX-Evil: 1"}),
    ],
)
def test_options_that_do_not_fit_the_method(method: Any, options: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        UrlSigner(SECRET, "http://gw").sign("alpha", "k", method, 60, **options)
    # A bad content type has its own reason; the status is INVALID_ARGUMENT all the same.
    expected = Reason.INVALID_CONTENT_TYPE if "\r" in options.get("content_type", "") else None
    assert caught.value.reason == (expected or Reason.INVALID_ARGUMENT)


def test_verify_allows_head_on_get_urls_and_reports_bound_options() -> None:
    signer = UrlSigner(SECRET, "http://gw", clock=Clock(0))
    url = signer.sign("alpha", "a/b c", "GET", 60, download=True, filename="x.txt").url
    query = dict(parse_qsl(urlsplit(url).query))
    assert urlsplit(url).path == "/v1/b/alpha/o/a/b%20c"
    verified = signer.verify("HEAD", "alpha", "a/b c", query)
    assert (verified.method, verified.download, verified.filename) == ("GET", True, "x.txt")
    with pytest.raises(SignatureError, match="method"):
        signer.verify("DELETE", "alpha", "a/b c", query)
    with pytest.raises(SignatureError, match="signature"):
        UrlSigner(SECRET[::-1], "http://gw").verify("GET", "alpha", "a/b c", query)


# --- the secret ---------------------------------------------------------------


def test_secret_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create_secrets(None, tmp_path)
    path = tmp_path / ".url-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 1
    assert len(first.current.secret) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == [".url-secret"]  # no temp left
    # A "restart": the same secret, so URLs signed before still verify.
    clock = Clock(5000)
    url = UrlSigner(first, "http://gw", clock=clock).sign("alpha", "k", "PUT", 60).url
    second = load_or_create_secrets(None, tmp_path)
    assert second.current == first.current
    query = dict(parse_qsl(urlsplit(url).query))
    assert UrlSigner(second, "http://gw", clock=clock).verify("PUT", "alpha", "k", query)


def test_secret_file_race_keeps_the_first_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = "ab" * 32
    real_link = os.link

    def link_after_another_process(src: Any, dst: Any) -> None:
        Path(dst).write_text(theirs + "\n")  # someone else won the race
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    assert load_or_create_secrets(None, tmp_path).current.secret == bytes.fromhex(theirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".url-secret"]


def test_configured_secret(tmp_path: Path) -> None:
    assert load_or_create_secrets("s" * 16, tmp_path).current.secret == b"s" * 16
    assert not (tmp_path / ".url-secret").exists()
    with pytest.raises(ValueError, match="STORAGE_URL_SECRET") as caught:
        load_or_create_secrets("too-short-secret"[:15], tmp_path)
    assert "too-short" not in str(caught.value)  # the secret is never echoed

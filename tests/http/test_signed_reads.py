"""Signed GET and HEAD URLs over real HTTP, on MemoryBackend and LocalBackend: whole
objects, ranges, missing objects and bad keys, downloads, and clients that go away."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from gateway.backends.base import ObjectReader
from tests.http.signed_env import DATA, Env, with_path

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

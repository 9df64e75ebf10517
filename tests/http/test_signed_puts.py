"""Signed PUT URLs over real HTTP, on MemoryBackend and LocalBackend: uploads that fit
what the URL binds are stored, the others refused with nothing stored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.http.signed_env import DATA, GATEWAY_MAX, Env, assert_missing, chunked_body, running

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
        signed.url, content=chunked_body(b"abc", b"", b"def"), headers={"Content-Type": "text/csv"}
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
    chunked = await env.client.put(signed.url, content=chunked_body(b"x" * 6, b"x" * 5))
    assert chunked.status_code == 413
    assert chunked.headers["X-Sgw-Reason"] == "OBJECT_TOO_LARGE"
    await assert_missing(env.backend, "small")
    exact = await env.client.put(signed.url, content=chunked_body(b"x" * 6, b"x" * 4))
    assert exact.status_code == 200
    assert (await env.read("small"))[1] == b"x" * 10


async def test_put_over_gateway_max_is_413(env: Env) -> None:
    signed = env.signer.sign("alpha", "huge", "PUT", 60, max_size=10 * GATEWAY_MAX)
    body = b"z" * (GATEWAY_MAX // 2)
    response = await env.client.put(signed.url, content=chunked_body(body, body, b"z"))
    assert response.status_code == 413
    await assert_missing(env.backend, "huge")


async def test_quota_exceeded_is_507(tmp_path: Path) -> None:
    async with running("memory", tmp_path, quota_bytes=100) as env:
        signed = env.signer.sign("alpha", "q", "PUT", 60)
        response = await env.client.put(signed.url, content=chunked_body(b"q" * 60, b"q" * 60))
        assert response.status_code == 507
        assert response.headers["X-Sgw-Reason"] == "QUOTA_EXCEEDED"
        await assert_missing(env.backend, "q")

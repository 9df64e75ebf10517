"""Signed URLs refused over real HTTP, on MemoryBackend and LocalBackend: expired,
tampered with, or used for another method; and logs that never show a signature."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.http.signed_env import Env, assert_missing, with_path, with_query

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

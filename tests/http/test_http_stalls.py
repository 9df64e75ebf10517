"""The signed-URL listener under clients that stall, over raw sockets to a real gateway
(memory backend): bodies that stop, readers that stop, idle and surplus connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.backends.base import ObjectReader
from tests.conftest import RunningGateway, signal_first_write
from tests.http.limit_gateway import put_object, sign, stored
from tests.http_raw import WAIT, Reader, connect, head

# --- bodies that stop, readers that stop ---------------------------------------


@pytest.mark.parametrize(
    "then",
    [
        pytest.param(b"zz\r\n", id="garbage-chunk-size"),
        pytest.param(b"10\r\nshort", id="chunk-cut-short"),
        pytest.param(b"", id="silence"),
    ],
)
def test_put_body_that_stops_is_ended_with_408(gw: RunningGateway, then: bytes) -> None:
    written = signal_first_write(gw)
    sock = connect(gw.gateway.http_port)
    sock.sendall(
        head("PUT", sign(gw, "wedged", "PUT"), {"Transfer-Encoding": "chunked"}) + b"5\r\nhello\r\n"
    )
    assert written.wait(WAIT)  # the handler has the good chunk in hand
    sock.sendall(then)
    reader = Reader(sock)
    response = reader.response()
    assert response.status == 408
    assert response.reason == "STREAM_IDLE_TIMEOUT"
    assert b"GATEWAY_STREAM_IDLE_TIMEOUT" in response.body
    assert response.headers.get("connection", "").lower() == "close"
    assert reader.closed_by_server()
    assert not stored(gw, "wedged")
    sock.close()


def test_post_body_that_stops_is_ended_with_408(gw: RunningGateway) -> None:
    sock = connect(gw.gateway.http_port)
    form_start = b'--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nabc'
    sock.sendall(
        head(
            "POST",
            sign(gw, "wedged-form", "POST"),
            {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": "1000"},
        )
        + form_start
    )
    reader = Reader(sock)
    response = reader.response()
    assert (response.status, response.reason) == (408, "STREAM_IDLE_TIMEOUT")
    assert reader.closed_by_server()
    assert not stored(gw, "wedged-form")
    sock.close()


def test_get_whose_client_stops_reading_is_cut(
    gw: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_object(gw, "big", bytes(range(256)) * (64 * 1024))  # 16 MiB: more than socket buffers
    closed = threading.Event()
    backend = gw.backend()
    open_read = backend.open_read

    async def tracking_open_read(*args: Any, **kwargs: Any) -> ObjectReader:
        reader = await open_read(*args, **kwargs)
        close = reader.close

        async def tracked_close() -> None:
            await close()
            closed.set()

        monkeypatch.setattr(reader, "close", tracked_close)
        return reader

    monkeypatch.setattr(backend, "open_read", tracking_open_read)
    sock = connect(gw.gateway.http_port, receive_buffer=4096)
    sock.sendall(head("GET", sign(gw, "big", "GET")))
    reader = Reader(sock)
    assert reader.response(body=False).status == 200
    # Read nothing more: the gateway must give up on this reader.
    assert closed.wait(WAIT)
    assert reader.closed_by_server()
    sock.close()


# --- connections ---------------------------------------------------------------


def test_idle_keepalive_connections_are_closed(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    gw = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_HTTP_KEEPALIVE_TIMEOUT="0.5")
    put_object(gw, "k", b"data")
    used = connect(gw.gateway.http_port)
    used.sendall(head("GET", sign(gw, "k", "GET")))
    reader = Reader(used)
    assert reader.response().body == b"data"
    assert reader.closed_by_server()  # idle after its answer
    silent = connect(gw.gateway.http_port)  # never sends a request
    assert Reader(silent).closed_by_server()
    slow = connect(gw.gateway.http_port)  # never completes its headers
    slow.sendall(b"GET /v1/b/default/o/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    assert Reader(slow).closed_by_server()
    for sock in (used, silent, slow):
        sock.close()


def test_connections_past_the_cap_are_closed(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    gw = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_HTTP_MAX_CONNECTIONS="3")
    put_object(gw, "k", b"data")
    url = sign(gw, "k", "GET")
    held = []
    for _ in range(3):
        sock = connect(gw.gateway.http_port)
        sock.sendall(head("GET", url))
        assert Reader(sock).response().body == b"data"  # served, then kept alive
        held.append(sock)
    surplus = connect(gw.gateway.http_port)
    reader = Reader(surplus)
    assert reader.closed_by_server()
    assert reader.buffer == b""  # closed unanswered
    surplus.close()
    # Once one of the three goes, a new connection is served again.
    held.pop().close()
    deadline = time.monotonic() + WAIT
    with httpx.Client(timeout=WAIT) as client:
        while True:
            try:
                response = client.get(url)
            except httpx.TransportError:
                # The gateway has not yet seen the close: poll, within a bound.
                assert time.monotonic() < deadline, "no connection served after one closed"
                continue
            assert response.content == b"data"
            break
    for sock in held:
        sock.close()

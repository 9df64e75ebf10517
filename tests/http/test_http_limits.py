"""The signed-URL listener under careless and hostile clients, over raw
sockets to a real gateway (memory backend): bodies that stop, readers that
stop, refused uploads that must not be read, idle and surplus connections,
absurd Range numbers, illegal stored header values, and 413s that say which
limit was hit."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.backends.base import ObjectReader
from gateway.core.ingest import Expected, Incoming, store
from gateway.domain.checksums import StreamChecksums
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, WriteOptions
from tests.conftest import RunningGateway, signal_first_write
from tests.http_raw import WAIT, Reader, connect, head

IDLE = "0.5"  # GATEWAY_STREAM_IDLE_TIMEOUT in these tests, seconds


@pytest.fixture
def gw(gateway_factory: Callable[..., RunningGateway]) -> RunningGateway:
    return gateway_factory(STORAGE_BACKEND="memory", GATEWAY_STREAM_IDLE_TIMEOUT=IDLE)


def sign(gw: RunningGateway, key: str, method: str, **options: Any) -> str:
    return str(gw.gateway.signer.sign("default", key, method, 600, **options).url)


def put_object(gw: RunningGateway, key: str, data: bytes, content_type: str = "") -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    gw.run(
        store(
            gw.backend(),
            key,
            WriteOptions(content_type=content_type),
            Incoming(chunks(), Expected()),
        )
    )


def stored(gw: RunningGateway, key: str) -> bool:
    async def exists() -> bool:
        try:
            await gw.backend().head(key)
        except GatewayError as error:
            if error.reason == Reason.OBJECT_NOT_FOUND:
                return False
            raise
        return True

    return bool(gw.run(exists()))


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


# --- refused uploads are not read ----------------------------------------------


def refusals(gw: RunningGateway) -> dict[str, tuple[str, dict[str, str], int, str]]:
    """name: (URL, headers, status, reason) of uploads refused on their headers."""
    big = str(100 * 1024 * 1024)
    put_url = sign(gw, "k", "PUT", max_size=1000, content_type="image/png")
    png = {"Content-Type": "image/png"}
    return {
        "bad-signature": (
            put_url.replace("X-Sgw-Signature=", "X-Sgw-Signature=00"),
            {**png, "Content-Length": "10"},
            403,
            "PERMISSION_DENIED",
        ),
        "other-content-type": (
            put_url,
            {"Content-Type": "text/html", "Content-Length": "10"},
            403,
            "PERMISSION_DENIED",
        ),
        "over-max-size": (put_url, {**png, "Content-Length": big}, 413, "OBJECT_TOO_LARGE"),
        "form-over-max-size": (
            sign(gw, "k", "POST", max_size=1000),
            {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": big},
            413,
            "OBJECT_TOO_LARGE",
        ),
        "unknown-bucket": (
            str(gw.gateway.signer.sign("nobucket", "k", "PUT", 600).url),
            {"Content-Length": "10"},
            404,
            "BUCKET_NOT_FOUND",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad-signature",
        "other-content-type",
        "over-max-size",
        "form-over-max-size",
        "unknown-bucket",
    ],
)
def test_refused_upload_gets_no_100_continue_and_is_not_read(gw: RunningGateway, case: str) -> None:
    url, headers, status, reason = refusals(gw)[case]
    method = "POST" if "form" in case else "PUT"
    sock = connect(gw.gateway.http_port)
    sock.sendall(head(method, url, {**headers, "Expect": "100-continue"}))
    reader = Reader(sock)
    response = reader.response()
    assert response.interim == []  # no "100 Continue" before the refusal
    assert (response.status, response.reason) == (status, reason)
    assert response.headers.get("connection", "").lower() == "close"
    # Closed without waiting for (or draining) the body it never asked for.
    assert reader.closed_by_server()
    assert not stored(gw, "k")
    sock.close()


@pytest.mark.parametrize("case", ["bad-signature", "over-max-size"])
def test_refused_upload_sent_without_waiting_is_not_drained(gw: RunningGateway, case: str) -> None:
    url, headers, status, reason = refusals(gw)[case]
    size = 100 * 1024 * 1024
    sock = connect(gw.gateway.http_port)
    sock.sendall(head("PUT", url, {**headers, "Content-Length": str(size)}))
    reader = Reader(sock)
    response = reader.response()
    assert (response.status, response.reason) == (status, reason)
    # A fast sender pushes on regardless: the gateway must not take its 100 MiB.
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        sock.sendall(bytes(size))
    assert not stored(gw, "k")
    sock.close()


@pytest.mark.parametrize("case", ["bad-signature", "over-max-size"])
def test_refused_body_sent_whole_is_drained_so_its_answer_arrives(
    gw: RunningGateway, case: str
) -> None:
    """Most clients send their whole body before they read: what is left of it
    is read and dropped (within GATEWAY_HTTP_LINGER_BYTES) and the connection
    ends in order, so the refusal is read, not lost to a reset."""
    url, headers, status, reason = refusals(gw)[case]
    size = 2 * 1024 * 1024
    sock = connect(gw.gateway.http_port)
    sock.sendall(head("PUT", url, {**headers, "Content-Length": str(size)}) + bytes(size))
    reader = Reader(sock)
    response = reader.response()
    assert (response.status, response.reason) == (status, reason)
    assert response.headers["connection"].lower() == "close"
    assert reader.ended_cleanly()
    assert not stored(gw, "k")
    sock.close()


def test_the_drain_of_a_refused_body_is_bounded(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    gw = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_HTTP_LINGER_BYTES="64KiB")
    url, headers, _, _ = refusals(gw)["over-max-size"]
    size = 2 * 1024 * 1024
    sock = connect(gw.gateway.http_port)
    # Past 64 KiB the gateway reads no more: the connection is cut, not ended in order.
    try:
        sock.sendall(head("PUT", url, {**headers, "Content-Length": str(size)}) + bytes(size))
        reader = Reader(sock)
        reader.response()
        cut = not reader.ended_cleanly()
    except (ConnectionResetError, BrokenPipeError):
        cut = True
    assert cut
    sock.close()


def test_accepted_upload_gets_100_continue_then_is_stored(gw: RunningGateway) -> None:
    sock = connect(gw.gateway.http_port)
    url = sign(gw, "k", "PUT", max_size=1000, content_type="image/png")
    headers = {"Content-Type": "image/png", "Content-Length": "5", "Expect": "100-continue"}
    sock.sendall(head("PUT", url, headers))
    reader = Reader(sock)
    assert reader.header_block().startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(b"hello")
    response = reader.response()
    assert response.status == 200, response.body
    assert stored(gw, "k")
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


# --- what the GET answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "status", "content"),
    [
        ("bytes=" + "9" * 5000 + "-", 416, None),
        ("bytes=" + "1" * 4400 + "-" + "9" * 3700, 416, None),  # within the line limit
        ("bytes=0-" + "9" * 5000, 206, b"0123456789"),
        ("bytes=-" + "9" * 5000, 206, b"0123456789"),
        ("bytes=" + "0" * 5000 + "2-3", 206, b"23"),
    ],
)
def test_range_with_absurd_numbers_is_never_5xx(
    gw: RunningGateway, range_header: str, status: int, content: bytes | None
) -> None:
    put_object(gw, "digits", b"0123456789")
    response = httpx.get(sign(gw, "digits", "GET"), headers={"Range": range_header})
    assert response.status_code == status, response.text
    if content is None:
        assert response.headers["X-Sgw-Reason"] == "INVALID_RANGE"
        assert response.headers["Content-Range"] == "bytes */10"
    else:
        assert response.content == content


@pytest.mark.parametrize(
    "content_type", ["text/plain\r\nX-Evil: 1", "text/plain\nX-Evil: 1", "a\x00b", "caf\u00e9/x"]
)
def test_get_of_object_with_illegal_stored_content_type(
    gw: RunningGateway, content_type: str
) -> None:
    async def put_raw() -> None:
        # Straight through the driver: what a backend holds, whatever Put allows.
        writer = await gw.backend().open_write("odd", WriteOptions(content_type=content_type))
        await writer.write(b"odd data")
        sums = StreamChecksums()
        sums.update(b"odd data")
        await writer.commit(Checksums(sums.crc32c, sums.sha256, sums.size))

    gw.run(put_raw())
    for method in ("GET", "HEAD"):
        response = httpx.request(method, sign(gw, "odd", "GET"))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert "X-Evil" not in response.headers
    assert httpx.get(sign(gw, "odd", "GET")).content == b"odd data"


# --- 413 says which limit, and no wrong size ------------------------------------


@pytest.fixture
def capped(gateway_factory: Callable[..., RunningGateway]) -> RunningGateway:
    return gateway_factory(STORAGE_BACKEND="memory", GATEWAY_MAX_OBJECT_SIZE="2000000")


def form(data: bytes) -> dict[str, Any]:
    return {"files": {"file": ("f.bin", data)}}


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


@pytest.mark.parametrize(
    ("method", "max_size", "size", "message"),
    [
        # Refused on Content-Length: the figure is the real one.
        ("PUT", 1_000_000, 1_500_000,
         "object of 1500000 bytes exceeds the signed URL's max_size of 1000000 bytes"),
        ("PUT", None, 2_500_000,
         "object of 2500000 bytes exceeds the gateway's GATEWAY_MAX_OBJECT_SIZE of 2000000 bytes"),
        # Chunked, refused as bytes arrive: no size is claimed.
        ("PUT-chunked", 1_000_000, 1_500_000,
         "object exceeds the signed URL's max_size of 1000000 bytes"),
        ("PUT-chunked", 3_000_000, 2_500_000,
         "object exceeds the gateway's GATEWAY_MAX_OBJECT_SIZE of 2000000 bytes"),
        # A form: refused on Content-Length when its file must be too large,
        # else as bytes arrive.
        ("POST", 1_000_000, 1_500_000,
         "the form's file (the form is {form} bytes, its other fields at most 282624) exceeds "
         "the signed URL's max_size of 1000000 bytes"),
        ("POST", 1_000_000, 1_200_000,
         "object exceeds the signed URL's max_size of 1000000 bytes"),
        ("POST", None, 2_100_000,
         "object exceeds the gateway's GATEWAY_MAX_OBJECT_SIZE of 2000000 bytes"),
    ],
)  # fmt: skip
def test_413_names_the_limit_hit_and_no_wrong_size(
    capped: RunningGateway, method: str, max_size: int | None, size: int, message: str
) -> None:
    data = b"x" * size
    options = {} if max_size is None else {"max_size": max_size}
    url = sign(capped, "big", method.split("-")[0], **options)
    with httpx.Client(timeout=WAIT) as client:
        if method == "POST":
            request = client.build_request("POST", url, **form(data))
            response = client.send(request)
            message = message.format(form=request.headers["Content-Length"])
        elif method == "PUT":
            response = client.put(url, content=data)
        else:
            response = asyncio.run(_put_chunked(url, data))
    assert response.status_code == 413
    assert response.headers["X-Sgw-Reason"] == "OBJECT_TOO_LARGE"
    assert response.text.strip() == message
    assert not stored(capped, "big")


async def _put_chunked(url: str, data: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as client:
        return await client.put(url, content=_pieces(data))


def test_a_driver_internal_error_is_logged_not_sent(caplog) -> None:
    """A driver's INTERNAL may carry server paths: the HTTP answer is a bare
    500 with the reason; the message goes to the log only."""
    from gateway.http.server import _gateway_error

    error = GatewayError(Reason.INTERNAL, "cannot read /srv/secret/objects/a: damaged")
    with caplog.at_level(logging.ERROR, logger="gateway.http.server"):
        response = _gateway_error(error)
    assert response.status == 500
    assert response.headers["X-Sgw-Reason"] == "INTERNAL"
    assert "/srv/secret" not in (response.text or "")
    assert any("/srv/secret/objects/a" in record.getMessage() for record in caplog.records)

"""The signed-URL listener refuses uploads on their headers, over raw sockets to a real
gateway (memory backend): a refused body is not read (no 100 Continue), or drained
within a bound so that its answer arrives; an accepted one is stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import RunningGateway
from tests.http.limit_gateway import sign, stored
from tests.http_raw import Reader, connect, head

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

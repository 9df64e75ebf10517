"""What the signed-URL listener answers to hostile or unlucky requests, over real HTTP
to a real gateway (memory backend): absurd Range numbers and illegal stored header
values are never a 5xx, a 413 says which limit was hit, and a driver's internal error
goes to the log, not to the client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.domain.checksums import StreamChecksums
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, WriteOptions
from tests.conftest import RunningGateway
from tests.http.limit_gateway import put_object, sign, stored
from tests.http_raw import WAIT

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

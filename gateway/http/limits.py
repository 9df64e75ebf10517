"""Bounds on what one signed-URL request may hold: an idle bound on every body
read and every response write, `Expect: 100-continue` answered only once a
request is accepted, the size limit an upload is held to (and where it comes
from), a bounded drain of a refused upload's body, and header values that are
always legal.

Why: a client that stops sending (or breaks a chunked body's framing, which
aiohttp reports as a new message while the current body waits for more) or
stops reading would otherwise hold its handler, its buffers, a temporary
object and its connection for good.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import ClientPayloadError, web
from aiohttp.http import HttpVersion11

from gateway.domain.errors import GatewayError, Reason

T = TypeVar("T")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ASKED_FOR_BODY = web.RequestKey("asked_for_body", bool)
# Visible ASCII, space and tab: what every HTTP stack accepts in a field value.
_LEGAL_VALUE = re.compile(r"[\x20-\x7e\t]*")


def stream_idle_timeout(idle: float, what: str) -> GatewayError:
    return GatewayError(
        Reason.STREAM_IDLE_TIMEOUT,
        f"no {what} for {idle:g} s (GATEWAY_STREAM_IDLE_TIMEOUT); nothing was stored",
        idle_timeout_seconds=f"{idle:g}",
    )


async def within_idle(step: Awaitable[T], idle: float, what: str = "request body bytes") -> T:
    """step, or STREAM_IDLE_TIMEOUT when it takes longer than idle seconds.
    Every read returns as soon as any bytes arrive, so this bounds the time
    between bytes, not the length of a transfer."""
    try:
        async with asyncio.timeout(idle):
            return await step
    except TimeoutError:
        raise stream_idle_timeout(idle, what) from None


async def idle_bounded(chunks: AsyncIterator[bytes], idle: float) -> AsyncIterator[bytes]:
    """chunks, each of which must arrive within idle seconds of the last."""
    while True:
        try:
            data = await within_idle(anext(chunks), idle)
        except StopAsyncIteration:
            return
        yield data


async def write_within_idle(
    request: web.Request, response: web.StreamResponse, data: bytes, idle: float
) -> bool:
    """Write data; False (the connection cut) when the client has not taken
    it within idle seconds: a reader that stops reading is not waited for."""
    try:
        async with asyncio.timeout(idle):
            await response.write(data)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # close() would wait to flush
        return False
    return True


async def expect_nothing_yet(request: web.Request) -> None:
    """The route's Expect handler: answers nothing, so that the handler sends
    `100 Continue` only after the checks (a refused upload's body is never
    asked for). Unknown expectations still get 417."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"unknown Expect: {expect}")


async def send_continue(request: web.Request) -> None:
    """Ask for the body, if the client waits to be asked."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() == "100-continue":
        await request.writer.write(_CONTINUE)
        # As aiohttp's own handler does: the 100 is not part of the response's size.
        request.writer.output_size = 0
        request[_ASKED_FOR_BODY] = True


def body_is_coming(request: web.Request) -> bool:
    """Whether the client sends its body without waiting: it did not ask
    `Expect: 100-continue`, or it did and got its 100."""
    expect = request.headers.get("Expect", "")
    return expect.lower() != "100-continue" or bool(request.get(_ASKED_FOR_BODY))


@dataclass(frozen=True, slots=True)
class Linger:
    """How much of a refused upload's unread body is read and dropped after
    its answer is sent (GATEWAY_HTTP_LINGER_BYTES, GATEWAY_HTTP_LINGER_TIME).

    Why: closing a socket with unread bytes makes the kernel send a reset,
    and a reset can destroy the answer before the client reads it: a client
    still sending its body (most send it whole before they read) would see a
    broken connection instead of the 413 that says why. Apache and nginx
    linger the same way. The bound keeps a fast sender from pushing a large
    body through the gateway for nothing: past it the connection is cut."""

    max_bytes: int = 4 * 1024 * 1024
    max_time: float = 2.0


async def answer_then_drain(
    request: web.Request, response: web.StreamResponse, linger: Linger
) -> None:
    """Send response (the connection then closes), then read and drop what is
    left of the request's body, up to linger's bounds."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    left = linger.max_bytes
    try:
        async with asyncio.timeout(linger.max_time):
            while left > 0 and not request.content.is_eof():
                data = await request.content.readany()
                if not data:
                    return
                left -= len(data)
    except (TimeoutError, OSError, ClientPayloadError):
        # Out of time, or the client went away or broke its framing: the
        # connection closes either way.
        return


def header_value(value: str, fallback: str) -> str:
    """value if it is a legal header field value, else fallback: a backend may
    hold anything (CR/LF in a content type must not break the response)."""
    return value if _LEGAL_VALUE.fullmatch(value) else fallback


def range_number(digits: str) -> int:
    """A Range header's number; absurdly long ones (past int()'s digit limit
    too) become a value beyond any object's size."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else BEYOND_ANY_OBJECT


BEYOND_ANY_OBJECT = 2**62


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """The bound an upload is held to, and which setting it comes from (a 413
    names it: the URL's own bound and the gateway's call for different fixes)."""

    size: int
    name: str

    def exceeded(self, what: str = "object") -> GatewayError:
        return GatewayError(
            Reason.OBJECT_TOO_LARGE,
            f"{what} exceeds {self.name} of {self.size} bytes",
            limit=self.size,
        )


def size_limit(url_max_size: int | None, gateway_max_size: int | None) -> SizeLimit | None:
    """The smaller of the URL's max_size and GATEWAY_MAX_OBJECT_SIZE; None: no limit."""
    if url_max_size is not None and (gateway_max_size is None or url_max_size <= gateway_max_size):
        return SizeLimit(url_max_size, "the signed URL's max_size")
    if gateway_max_size is not None:
        return SizeLimit(gateway_max_size, "the gateway's GATEWAY_MAX_OBJECT_SIZE")
    return None

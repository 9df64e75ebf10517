"""Property: whatever HTTP request reaches the signed-URL listener (any
method, key, query, signature or expiry tampering, Range, Content-Type,
Content-Length, Expect, Transfer-Encoding and body), the answer is never
5xx, a tampered URL never succeeds, and a refused upload stores nothing.

Requests go over raw sockets to a real gateway (memory backend) with a short
idle timeout, so a body shorter than its Content-Length ends in a 408 soon.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.domain.objects import NO_CONDITIONS
from tests.conftest import RunningGateway
from tests.http.limit_gateway import put_object, stored
from tests.http_raw import RawResponse, Reader, connect

EXISTING = "existing/object.bin"
EXISTING_DATA = bytes(range(256)) * 40
_fresh = itertools.count()

TOKEN = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1)
# Printable ASCII without CR/LF: anything a client can put in a header line.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
NUMBER = st.one_of(
    st.integers(min_value=0, max_value=2**70).map(str),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
)
RANGE_NUMBER = st.one_of(NUMBER, st.just(""))


@dataclass
class Case:
    method: str
    signed_method: str
    key: str
    target: str
    tampered: bool
    headers: dict[str, str]
    body: bytes


@st.composite
def ranges(draw: st.DrawFn) -> str:
    first, last = draw(RANGE_NUMBER), draw(RANGE_NUMBER)
    unit = draw(st.sampled_from(["bytes", "bytes", "lines", "BYTES"]))
    text = f"{unit}={first}-{last}"
    if draw(st.booleans()):
        text += f",{draw(RANGE_NUMBER)}-{draw(RANGE_NUMBER)}"
    return text


@st.composite
def signed_targets(draw: st.DrawFn, gw: RunningGateway, key: str) -> tuple[str, str, bool]:
    """(signed method, request target, tampered)."""
    signed_method = draw(st.sampled_from(["GET", "PUT", "POST"]))
    options: dict[str, Any] = {}
    if signed_method != "GET":
        if draw(st.booleans()):
            options["content_type"] = draw(st.sampled_from(["image/png", "text/plain"]))
        if draw(st.booleans()):
            options["max_size"] = draw(st.integers(min_value=0, max_value=4000))
    if signed_method == "POST" and draw(st.booleans()):
        options["min_size"] = draw(st.integers(min_value=0, max_value=options.get("max_size", 50)))
    if signed_method == "GET" and draw(st.booleans()):
        options["download"] = True
        options["filename"] = draw(HEADER_TEXT)
    url = gw.gateway.signer.sign("default", key, signed_method, 600, **options).url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    path = parts.path
    tamper = draw(
        mostly(
            st.just("none"),
            st.sampled_from(["signature", "expiry", "drop", "add", "repeat", "path", "value"]),
        )
    )
    if tamper == "signature":
        query = [(n, draw(HEADER_TEXT) if n == "X-Sgw-Signature" else v) for n, v in query]
    elif tamper == "expiry":
        expiry = draw(st.sampled_from(["1", "0", "-5", "99999999999999999999", "x", ""]))
        query = [(n, expiry if n == "X-Sgw-Expires" else v) for n, v in query]
    elif tamper == "drop":
        query.pop(draw(st.integers(min_value=0, max_value=len(query) - 1)))
    elif tamper == "add":
        query.append((draw(st.sampled_from(["X-Sgw-Max-Size", "x-sgw-extra"])), draw(NUMBER)))
    elif tamper == "repeat":
        query.append(query[draw(st.integers(min_value=0, max_value=len(query) - 1))])
    elif tamper == "path":
        other = draw(st.text(min_size=1, max_size=20))
        path = f"/v1/b/default/o/{quote(other, safe='/')}"
        tamper = "none" if other == key else tamper
    elif tamper == "value":
        index = draw(st.integers(min_value=0, max_value=len(query) - 1))
        name, value = query[index]
        new = draw(HEADER_TEXT)
        query[index] = (name, new)
        tamper = "none" if new == value else tamper
    if draw(st.booleans()):
        query.append(("unsigned", draw(HEADER_TEXT)))  # ignored, not signed
    return signed_method, f"{path}?{urlencode(query)}", tamper != "none"


def mostly(likely: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """likely four times out of five, else other: requests that get past the
    first checks, and a fair share of requests that do not."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: other if n == 0 else likely)


@st.composite
def cases(draw: st.DrawFn, gw: RunningGateway) -> Case:
    key = draw(st.sampled_from([EXISTING, f"fresh/{next(_fresh)}"]))
    signed_method, target, tampered = draw(signed_targets(gw, key))
    method = draw(
        mostly(
            st.just(signed_method),
            st.one_of(
                st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]),
                TOKEN,
            ),
        )
    )
    bound_type = dict(parse_qsl(urlsplit(target).query)).get("X-Sgw-Content-Type")
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Range"] = draw(ranges())
    data = draw(st.binary(max_size=3000))
    if method == "POST" and draw(mostly(st.just(True), st.just(False))):
        headers["Content-Type"] = "multipart/form-data; boundary=b"
        fields = {"Content-Type": bound_type} if bound_type else {}
        if draw(st.booleans()):
            fields[draw(st.sampled_from(["x-ignore-note", "acl", "Content-Type"]))] = draw(
                HEADER_TEXT
            )
        body = form(data, fields, draw(mostly(st.just("file"), st.just("other"))))
    else:
        body = data
        content_type = draw(
            st.one_of(
                st.just(bound_type),
                st.sampled_from(["image/png", "text/plain", "multipart/form-data; boundary=b"]),
                HEADER_TEXT,
            )
        )
        if content_type:
            headers["Content-Type"] = content_type
    framing = draw(
        mostly(
            st.just("length"),
            st.sampled_from(["short", "long", "chunked", "broken-chunked", "absurd", "none"]),
        )
    )
    if framing == "length":
        headers["Content-Length"] = str(len(body))
    elif framing == "short":
        headers["Content-Length"] = str(max(0, len(body) - draw(st.integers(1, 100))))
    elif framing == "long":
        headers["Content-Length"] = str(len(body) + draw(st.integers(1, 100)))
    elif framing == "absurd":
        headers["Content-Length"] = draw(NUMBER)
    elif framing.endswith("chunked"):
        headers["Transfer-Encoding"] = "chunked"
        body = chunked(body, broken=framing.startswith("broken"))
    else:
        body = b""
    if draw(st.booleans()):
        headers["Expect"] = draw(st.sampled_from(["100-continue", "100-CONTINUE", "nonsense"]))
    return Case(method, signed_method, key, target, tampered, headers, body)


def form(data: bytes, fields: dict[str, str], file_field: str) -> bytes:
    parts = [
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--b\r\nContent-Disposition: form-data; name="{file_field}"; filename="f"\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + b"--b--\r\n"


def chunked(body: bytes, broken: bool) -> bytes:
    encoded = b"".join(
        f"{len(body[i : i + 700]):x}\r\n".encode() + body[i : i + 700] + b"\r\n"
        for i in range(0, len(body), 700)
    )
    return encoded + (b"zz\r\n" if broken else b"0\r\n\r\n")


def send(port: int, case: Case) -> RawResponse:
    lines = [f"{case.method} {case.target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in case.headers.items()]
    sock = connect(port)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + case.body)
        return Reader(sock).response(body=case.method != "HEAD")
    finally:
        sock.close()


@pytest.fixture
def gw(gateway_factory: Callable[..., RunningGateway]) -> RunningGateway:
    running = gateway_factory(
        STORAGE_BACKEND="memory",
        GATEWAY_STREAM_IDLE_TIMEOUT="0.3",
        GATEWAY_MAX_OBJECT_SIZE="2500",
    )
    put_object(running, EXISTING, EXISTING_DATA)
    return running


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_request_gets_5xx_and_refused_uploads_store_nothing(
    gw: RunningGateway, data: st.DataObject
) -> None:
    case = data.draw(cases(gw))
    response = send(gw.gateway.http_port, case)
    event(f"{case.method if case.method in ('GET', 'HEAD', 'PUT', 'POST') else 'other'} "
          f"{response.status}")  # fmt: skip
    assert response.status < 500, (response, case)
    if case.tampered:
        assert response.status >= 400, (response, case)
    if case.key != EXISTING and response.status >= 400:
        assert not stored(gw, case.key), (response, case)
    if case.key == EXISTING:
        if 200 <= response.status < 300 and case.method in ("PUT", "POST"):
            put_object(gw, EXISTING, EXISTING_DATA)  # overwritten: as it was, for the next case
        # Anything else left the object as it was.
        assert gw.run(read(gw)) == EXISTING_DATA


async def read(gw: RunningGateway) -> bytes:
    reader = await gw.backend().open_read(EXISTING, 0, None, NO_CONDITIONS)
    try:
        return b"".join([c async for c in reader.chunks(65536)])
    finally:
        await reader.close()

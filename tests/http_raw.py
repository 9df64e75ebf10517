"""A raw-socket HTTP/1.1 client for tests that need what real clients hide:
exactly which bytes go out and when, interim 100 responses, and whether the
server closed the connection."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# A bound on every wait: a test fails, rather than hangs, on a server that never answers.
WAIT = 30.0


@dataclass
class RawResponse:
    status: int
    reason_phrase: str
    headers: dict[str, str]
    body: bytes = b""
    interim: list[int] = field(default_factory=list)  # 1xx statuses seen before it

    @property
    def reason(self) -> str:
        return self.headers.get("x-sgw-reason", "")


def target(url: str) -> str:
    """The request target (path and query) of a signed URL."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def connect(port: int, *, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        # Before connect, so that the advertised window stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    return sock


def head(method: str, url: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {target(url)} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Reader:
    """Reads responses off one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def header_block(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed mid-headers: {self.buffer!r}")
        block, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return block

    def response(self, *, body: bool = True) -> RawResponse:
        """The next final response (interim 1xx ones are noted in .interim);
        its body read by Content-Length when body is True."""
        interim = []
        while True:
            status_line, *header_lines = self.header_block().decode("latin-1").split("\r\n")
            _, code, *phrase = status_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= int(code) < 200:
                interim.append(int(code))
                continue
            response = RawResponse(int(code), " ".join(phrase), headers, interim=interim)
            if body and "content-length" in headers:
                size = int(headers["content-length"])
                while len(self.buffer) < size:
                    if not self._fill():
                        break
                response.body, self.buffer = self.buffer[:size], self.buffer[size:]
            return response

    def closed_by_server(self) -> bool:
        """True once the server has closed (EOF or reset), after any bytes
        still in flight; False if it sends more than a response's leftovers
        and keeps the connection open for the whole wait."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def ended_cleanly(self) -> bool:
        """True when the server closed with an orderly end (EOF) after any
        bytes still in flight; False on a reset, which may have destroyed
        what the server sent before it."""
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return False
        return True

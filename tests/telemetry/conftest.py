"""An OTLP/HTTP receiver on loopback, for the metrics and the traces the
gateway exports over OTLP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# (the path posted to, the body: an Export*ServiceRequest in protobuf)
Exports = list[tuple[str, bytes]]


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint: keeps each export it is sent."""

    exports: Exports

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.exports.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, Exports]]:
    """(the receiver's base URL, the exports it was sent)."""
    exports: Exports = []
    handler = type("Receiver", (_Receiver,), {"exports": exports})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", exports
    server.shutdown()
    server.server_close()
    thread.join(5)

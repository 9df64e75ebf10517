"""An OTLP/HTTP receiver on loopback, for the metrics and the traces the
gateway exports over OTLP; gateways that trace, with their spans in memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.telemetry.spans import SpanRecorder

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


@pytest.fixture
def traced(receiver, gateway_factory):
    """A gateway on the memory driver exporting its spans over OTLP (to the
    loopback receiver), and an in-memory exporter beside that one. The
    receiver is asked for first so that it outlives the gateway, which
    exports as it stops. The memory driver's calls stay on the machine, so
    they are spans only when slow: here every call is (unless env sets
    GATEWAY_TRACE_SLOW_CALL_MS)."""

    def start(**env: str):
        url, _ = receiver
        settings = {
            "STORAGE_BACKEND": "memory",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
            "GATEWAY_TRACE_SLOW_CALL_MS": "0",
            **env,
        }
        running = gateway_factory(**settings)
        recorder = SpanRecorder()
        running.gateway.telemetry.tracer_provider.add_span_processor(recorder.processor)
        return running, recorder

    return start

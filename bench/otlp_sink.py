"""`python -m bench.otlp_sink --port N`: a loopback OTLP/HTTP receiver for the
telemetry section. It takes every POST (traces, metrics), reads its whole
body and answers 200, as a collector would, and counts what it got; GET /stats
returns the counts as JSON, so the bench can show that spans really left the
gateway."""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_counts: dict[str, dict[str, int]] = {}
_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporters use it

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        with _lock:
            seen = _counts.setdefault(self.path, {"requests": 0, "bytes": 0})
            seen["requests"] += 1
            seen["bytes"] += size
        self._answer(b"", "application/x-protobuf")

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps(_counts).encode()
        self._answer(body, "application/json")

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per export would be all the log holds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()

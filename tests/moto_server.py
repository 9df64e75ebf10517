"""moto's standalone S3 server for tests, started as a separate process on 127.0.0.1.

``MotoServer`` starts in ~1 s; good for most S3 behaviour, but it does NOT verify signatures
(a tampered or expired presigned URL still gets 200). Like ``CephRgw`` it offers ``start()``,
``reset()`` (drop everything tests created, cheaper than a restart), ``stop()``, ``endpoint``,
``access_key``, ``secret_key``, ``region`` and ``client()``.
No fixtures are registered here: conftest.py wires it into pytest."""

from __future__ import annotations

import functools
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any

from tests.child_server import ChildServer, answers_http
from tests.servers import REGION, free_port, s3_client


class MotoServer(ChildServer):
    """moto's standalone S3 server in a child process (``python -m moto.server``)."""

    # moto accepts any credentials: it does not check signatures.
    access_key = "testing"
    secret_key = "testing"
    region = REGION

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's pid while it runs (the benchmark samples its RSS)."""
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 30) -> MotoServer:
        if self._proc is not None:
            raise RuntimeError("moto server already started")
        self.port = free_port()
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        ready = functools.partial(answers_http, f"{self.endpoint}/moto-api/")
        self._spawn("moto server", command, ready, timeout)
        return self

    def reset(self) -> None:
        """Forget all buckets and objects (moto's own reset endpoint)."""
        url = f"{self.endpoint}/moto-api/reset"  # always http://127.0.0.1
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def client(self, **config: Any) -> Any:
        return s3_client(self.endpoint, self.access_key, self.secret_key, **config)

    def __enter__(self) -> MotoServer:
        return self.start()

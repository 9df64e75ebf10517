"""HAProxy (the Debian package) in front of gateway replicas, balancing gRPC
per call: HTTP/2 on both sides, round robin over the servers, a health
check that takes a dead replica out within about a second.

Needs the `haproxy` binary (scripts/install-test-servers.sh installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import free_port

# Long enough for the longest transfer of a test (and a kill mid-way): the
# gateway's own idle timeout is what ends a stalled stream.
_CONFIG = """\
global
    maxconn 1000
    # Large HTTP/2 windows towards the client: the default 64 KiB would make a
    # 64 MiB upload crawl across one proxied connection.
    tune.h2.initial-window-size 4194304

defaults
    mode http
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    # A stream whose server cannot be reached goes to the other one.
    retries 3
    option redispatch

frontend grpc
    bind 127.0.0.1:{port} proto h2
    default_backend gateways

backend gateways
    balance roundrobin
{servers}
"""


class HaProxy:
    """`haproxy -db` in the foreground with a generated configuration."""

    def __init__(self, backend_ports: list[int], directory: Path) -> None:
        self.port = free_port()
        self._config = directory / "haproxy.cfg"
        servers = "\n".join(
            f"    server g{n} 127.0.0.1:{port} proto h2 check inter 300ms fall 1 rise 1"
            for n, port in enumerate(backend_ports, 1)
        )
        self._config.write_text(_CONFIG.format(port=self.port, servers=servers))
        self._log = directory / "haproxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("haproxy") is not None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> HaProxy:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                ["haproxy", "-f", str(self._config), "-db"], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self._log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)  # polling the port until it listens
        self.stop()
        raise RuntimeError(f"haproxy did not listen within {timeout} s:\n{self._log.read_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)

    def __enter__(self) -> HaProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

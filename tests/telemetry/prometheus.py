"""A real Prometheus server (Debian's `prometheus` package, installed by
scripts/install-test-servers.sh) for tests: it scrapes the targets it is
given every second and answers PromQL over its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.servers import free_port

BINARIES = ("prometheus", "promtool")


class PrometheusServer:
    def __init__(self, workdir: Path, targets: Sequence[str], rule_files: Sequence[Path] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s"]
        if rule_files:
            lines += ["rule_files:", *(f"  - {path}" for path in rule_files)]
        lines += [
            "scrape_configs:",
            "  - job_name: storagegw",
            "    static_configs:",
            f"      - targets: [{', '.join(repr(t) for t in targets)}]",
        ]
        config.write_text("\n".join(lines) + "\n")
        self._log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={workdir / 'data'}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @staticmethod
    def missing_binaries() -> list[str]:
        return [name for name in BINARIES if shutil.which(name) is None]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("prometheus did not get ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant query's result vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()

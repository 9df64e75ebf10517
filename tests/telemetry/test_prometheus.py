"""A real Prometheus server scrapes the gateway's metrics listener, and PromQL
over its HTTP API returns the bytes of the transfers this test made."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import Client
from tests.telemetry.prometheus import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ALERTS = REPO / "deploy" / "prometheus" / "storagegw-alerts.yaml"
SENT = bytes(range(256)) * 4096  # 1 MiB
SMALL = b"s" * 12345


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[object]:
    missing = PrometheusServer.missing_binaries()
    if missing:
        pytest.skip(
            f"Prometheus not installed (missing {', '.join(missing)}); "
            "run scripts/install-test-servers.sh (make test does)"
        )
    servers: list[PrometheusServer] = []

    def start(target: str) -> PrometheusServer:
        server = PrometheusServer(tmp_path, [target], rule_files=[ALERTS])
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


def readme_queries() -> list[str]:
    """The queries of the README's PromQL table (in its Metrics section)."""
    text = README.read_text()
    table = text[text.index("Some PromQL:") :]
    table = table[: table.index("\n\n", table.index("|"))]
    queries = re.findall(r"^\|[^|]+\| `(.+)` \|$", table, re.MULTILINE)
    assert len(queries) >= 5, table
    return queries


def _poll(prometheus: PrometheusServer, promql: str, expected: float, timeout: float = 60) -> float:
    """The query's single value once it equals expected (Prometheus scrapes every
    second; bounded polling, no fixed sleep); the last value seen otherwise."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        result = prometheus.query(promql)
        if result:
            seen = float(result[0]["value"][1])
            if seen == expected:
                break
        time.sleep(0.2)
    assert seen is not None, f"no series for {promql}"
    return seen


def test_prometheus_scrapes_the_bytes_the_gateway_moved(gateway_factory, prometheus_for):
    running = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_METRICS_LISTEN="127.0.0.1:0")
    prometheus = prometheus_for(f"127.0.0.1:{running.gateway.telemetry.metrics_port}")
    with Client(running.target) as client:
        client.put_bytes("big.bin", SENT)
        client.put_bytes("small.bin", SMALL)
        assert client.get_bytes("big.bin") == SENT

    received = 'sum(storagegw_transfer_bytes_total{job="storagegw",direction="received"})'
    assert _poll(prometheus, received, len(SENT) + len(SMALL)) == len(SENT) + len(SMALL)
    sent = 'storagegw_transfer_bytes_total{bucket="default",direction="sent"}'
    assert _poll(prometheus, sent, len(SENT)) == len(SENT)
    stored = 'storage_bytes_total{backend="memory",tenant="default"}'
    assert _poll(prometheus, stored, len(SENT) + len(SMALL)) == len(SENT) + len(SMALL)
    assert _poll(prometheus, "storage_egress_bytes_total", len(SENT)) == len(SENT)
    # The target is up, and the sample alert rule is loaded and evaluates.
    assert prometheus.query('up{job="storagegw"}')[0]["value"][1] == "1"
    # The README's PromQL examples are valid queries over these metrics.
    for promql in readme_queries():
        prometheus.query(promql)
    groups = prometheus.get("/api/v1/rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert rules["StorageEgressPerDayHigh"]["health"] in ("ok", "unknown")

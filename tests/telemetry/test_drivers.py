"""The instrumented driver on every backend: the same operations give the same
byte counts, operation classes and error reasons whatever the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import Client, NotFound
from tests.conftest import BACKENDS, RunningGateway, run_gateway
from tests.drivers import backend_env
from tests.telemetry.scrape import scrape_until, value

DATA = bytes(range(251)) * 12000  # 3,012,000 bytes: several chunks


@pytest.fixture(params=BACKENDS)
def metered(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    env = {**backend_env(request, request.param), "GATEWAY_METRICS_LISTEN": "127.0.0.1:0"}
    with run_gateway(env, tmp_path) as running:
        running.backend_name = request.param
        yield running


def test_each_backend_call_is_metered(metered):
    kind = metered.backend().kind
    where = {"bucket": "default", "backend": kind}
    with Client(metered.target) as client:
        client.put_bytes("m/one.bin", DATA)
        assert client.get_bytes("m/one.bin") == DATA
        client.copy("m/one.bin", "m/two.bin")
        assert client.head("m/two.bin").size == len(DATA)
        assert {info.key for info in client.list(prefix="m/")} == {"m/one.bin", "m/two.bin"}
        with pytest.raises(NotFound):
            client.head("m/missing.bin")
        assert client.delete("m/two.bin")

    samples = scrape_until(
        metered.gateway.telemetry.metrics_port,
        lambda s: (
            value(s, "storagegw_rpc_duration_seconds_count", method="Delete", status="OK") == 1
        ),
    )
    transfer = "storagegw_transfer_bytes_total"
    assert value(samples, transfer, **where, direction="received") == len(DATA)
    assert value(samples, transfer, **where, direction="sent") == len(DATA)
    # The Put and the driver's own copy stored bytes; the copy moved none through the gateway.
    assert value(samples, "storage_bytes_total", backend=kind, tenant="default") == 2 * len(DATA)
    assert value(samples, "storage_egress_bytes_total", backend=kind) == len(DATA)
    operations = "storagegw_storage_operations_total"
    assert value(samples, operations, **where, **{"class": "A"}) == 3  # Put, Copy, List
    assert value(samples, operations, **where, **{"class": "B"}) == 3  # Get, two Heads
    errors = "storagegw_backend_errors_total"
    assert value(samples, errors, **where, operation="head", reason="OBJECT_NOT_FOUND") == 1
    duration = "storagegw_backend_duration_seconds_count"
    assert value(samples, duration, **where, operation="delete", outcome="ok") == 1
    assert value(samples, duration, **where, operation="commit", outcome="ok") == 1

"""The telemetry settings, and the same metrics exported over OTLP/HTTP to a
receiver on loopback when the OTEL_* variables ask for it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from gateway import config as config_module
from gateway.domain.settings import ConfigError
from gateway.server import Gateway
from gateway.telemetry.settings import TelemetrySettings, load_telemetry_settings
from storagegw import Client
from tests.conftest import run_gateway


def test_metrics_are_off_by_default():
    settings = load_telemetry_settings({})
    assert settings == TelemetrySettings(None, None)
    assert not settings.metrics_on
    assert config_module.load({}).telemetry == settings


@pytest.mark.parametrize("text", ["9464", "localhost", ":9464", "host:port", "h:70000"])
def test_a_bad_metrics_address_names_the_setting(text):
    with pytest.raises(ConfigError, match="GATEWAY_METRICS_LISTEN") as raised:
        config_module.load({"GATEWAY_METRICS_LISTEN": text})
    assert "host:port" in str(raised.value)


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:9/m"}, "http://c:9/m"),
        ({"OTEL_METRICS_EXPORTER": "otlp"}, "http://localhost:4318/v1/metrics"),
        ({"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"}, None),
        ({"OTEL_METRICS_EXPORTER": "console,otlp"}, "http://localhost:4318/v1/metrics"),
    ],
)
def test_otlp_export_follows_the_standard_variables(env, endpoint):
    assert load_telemetry_settings(env).otlp_metrics_endpoint == endpoint


def test_only_otlp_over_http_is_offered():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        load_telemetry_settings(env)


def test_a_metrics_address_in_use_stops_the_start(gateway_factory, tmp_path: Path):
    first = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_METRICS_LISTEN="127.0.0.1:0")
    taken = f"127.0.0.1:{first.gateway.telemetry.metrics_port}"
    config = config_module.load(
        {
            "STORAGE_BACKEND": "memory",
            "STORAGE_BASE_PATH": str(tmp_path),
            "GATEWAY_LISTEN": "127.0.0.1:0",
            "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
            "GATEWAY_METRICS_LISTEN": taken,
        }
    )

    async def start() -> None:
        gateway = Gateway(config)
        try:
            await gateway.start()
        finally:
            await gateway.stop(0)

    with pytest.raises(OSError, match=f"GATEWAY_METRICS_LISTEN: cannot listen on {taken}"):
        asyncio.run(start())


def test_metrics_go_over_otlp_when_an_endpoint_is_set(receiver, tmp_path: Path):
    url, exports = receiver
    # The endpoint would take traces too: none asked for, metrics alone go.
    env = {
        "STORAGE_BACKEND": "memory",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_TRACES_EXPORTER": "none",
    }
    with run_gateway(env, tmp_path) as running:
        assert running.gateway.telemetry.tracing is None
        assert running.gateway.telemetry.metrics_port == 0  # no Prometheus listener asked for
        with Client(running.target) as client:
            client.put_bytes("otlp.bin", b"o" * 4321)
    # Stopping the gateway exports what the last period had not.
    assert exports, "nothing was exported"
    points = {}
    for path, body in exports:
        assert path == "/v1/metrics"
        request = ExportMetricsServiceRequest.FromString(body)
        for resource in request.resource_metrics:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "storagegw"
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "storage_bytes":
                        assert metric.unit == "By"
                        for point in metric.sum.data_points:
                            labels = {a.key: a.value.string_value for a in point.attributes}
                            points[labels["tenant"]] = point.as_int
    assert points == {"default": 4321}


def test_with_metrics_off_the_sdk_is_not_even_loaded():
    script = (
        "import sys\n"
        "from gateway import config, server\n"
        "from gateway.telemetry import export\n"
        "assert export.build(config.load({}).telemetry) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'prometheus_client'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

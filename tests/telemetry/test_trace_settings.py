"""The trace settings (OpenTelemetry's standard variables), and what traces
cost when they are off: nothing is made, nothing of the SDK's trace part loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway import config as config_module
from gateway.domain.settings import ConfigError
from gateway.telemetry.settings import TraceSettings, load_telemetry_settings


def traces(env: dict[str, str]) -> TraceSettings:
    return load_telemetry_settings(env).traces


def test_traces_are_off_by_default():
    assert not traces({}).on
    assert not load_telemetry_settings({}).on


@pytest.mark.parametrize(
    ("env", "endpoint", "console"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces", False),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9/t"}, "http://c:9/t", False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "http://localhost:4318/v1/traces", False),
        (
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"},
            None,
            False,
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, None, True),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, "http://localhost:4318/v1/traces", True),
        # Metrics alone asked for by name: the endpoint is theirs, not the traces'.
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp"}, None, False),
    ],
)
def test_trace_export_follows_the_standard_variables(env, endpoint, console):
    settings = traces(env)
    assert settings.otlp_endpoint == endpoint
    assert settings.console is console
    assert settings.on is (endpoint is not None or console)


def test_the_sampler_and_its_ratio():
    assert traces({}).sampler == "parentbased_always_on"
    settings = traces({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert (settings.sampler, settings.ratio) == ("traceidratio", 0.25)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
        ({"GATEWAY_TRACE_KEYS": "yes"}, "GATEWAY_TRACE_KEYS"),
        ({"GATEWAY_TRACE_SLOW_CALL_MS": "fast"}, "GATEWAY_TRACE_SLOW_CALL_MS"),
        ({"GATEWAY_TRACE_SLOW_CALL_MS": "-1"}, "GATEWAY_TRACE_SLOW_CALL_MS"),
        ({"GATEWAY_TRACE_SLOW_CALL_MS": "inf"}, "GATEWAY_TRACE_SLOW_CALL_MS"),
        ({"GATEWAY_TRACE_SLOW_CALL_MS": "nan"}, "GATEWAY_TRACE_SLOW_CALL_MS"),
    ],
)
def test_a_bad_trace_setting_is_named(env, setting):
    with pytest.raises(ConfigError, match=setting):
        config_module.load(env)


def test_what_counts_as_a_slow_call_is_a_setting_in_milliseconds():
    assert traces({}).slow_call_s == 0.1
    assert traces({"GATEWAY_TRACE_SLOW_CALL_MS": "250"}).slow_call_s == 0.25
    assert traces({"GATEWAY_TRACE_SLOW_CALL_MS": "0"}).slow_call_s == 0.0


def test_keys_are_hashed_unless_the_setting_allows():
    assert not traces({}).record_keys
    assert traces({"GATEWAY_TRACE_KEYS": "1"}).record_keys


def test_with_traces_off_no_tracer_is_made_nor_the_sdk_trace_part_loaded():
    # Metrics on, traces off: the telemetry exists, its tracing does not.
    script = (
        "import sys\n"
        "from gateway import config, server\n"
        "from gateway.telemetry import export\n"
        "settings = config.load({'GATEWAY_METRICS_LISTEN': '127.0.0.1:0'}).telemetry\n"
        "telemetry = export.build(settings)\n"
        "assert telemetry is not None\n"
        "assert telemetry.tracing is None and telemetry.tracer_provider is None\n"
        "telemetry.provider.shutdown()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk.trace')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"

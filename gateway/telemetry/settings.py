"""The telemetry settings.

- GATEWAY_METRICS_LISTEN (host:port; unset: no listener): Prometheus text at
  /metrics, on a listener of its own (9464 is the conventional port).
- OTLP export of the same metrics, as OpenTelemetry's standard variables say:
  on when OTEL_METRICS_EXPORTER names otlp, or when it is unset and an OTLP
  endpoint is (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, used as it is, or
  OTEL_EXPORTER_OTLP_ENDPOINT, to which /v1/metrics is added); protocol
  http/protobuf. The exporter reads the other OTEL_EXPORTER_OTLP_* variables
  (headers, timeout, certificates) itself, and OTEL_SERVICE_NAME and
  OTEL_RESOURCE_ATTRIBUTES name the service (storagegw by default).
- Traces, the same way: OTEL_TRACES_EXPORTER (otlp, console or none; unset:
  otlp when an OTLP endpoint is set, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
  OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces), sampled as OTEL_TRACES_SAMPLER
  and OTEL_TRACES_SAMPLER_ARG say (parentbased_always_on by default).
  GATEWAY_TRACE_KEYS=1 records object keys on spans; otherwise a hash of
  each (keys can be personal data). GATEWAY_TRACE_SLOW_CALL_MS (100): what
  is traced only when slow (checkpoints, the calls of a driver whose calls
  stay on the machine, the local driver's fsyncs) is a span from this long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.domain.settings import ConfigError

METRICS_LISTEN = "GATEWAY_METRICS_LISTEN"
TRACE_KEYS = "GATEWAY_TRACE_KEYS"
TRACE_SLOW_CALL_MS = "GATEWAY_TRACE_SLOW_CALL_MS"
OTLP_DEFAULT = "http://localhost:4318"
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_EXPORTERS = ("otlp", "console", "none")


@dataclass(frozen=True, slots=True)
class TraceSettings:
    # The OTLP/HTTP traces endpoint; None: no OTLP export.
    otlp_endpoint: str | None = None
    # Spans written to stdout, one JSON document each (OTEL_TRACES_EXPORTER=console).
    console: bool = False
    sampler: str = "parentbased_always_on"
    # The ratio of the traceidratio samplers (OTEL_TRACES_SAMPLER_ARG).
    ratio: float = 1.0
    # Object keys on spans as they are (GATEWAY_TRACE_KEYS=1), or hashed.
    record_keys: bool = False
    # What is traced only when slow is a span from this many seconds on.
    slow_call_s: float = 0.1

    @property
    def on(self) -> bool:
        return self.otlp_endpoint is not None or self.console


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    # host:port of the Prometheus listener; None: none.
    metrics_listen: str | None = None
    # The OTLP/HTTP metrics endpoint; None: no OTLP export.
    otlp_metrics_endpoint: str | None = None
    traces: TraceSettings = TraceSettings()
    # OTEL_SERVICE_NAME (None: OTEL_RESOURCE_ATTRIBUTES's, else storagegw).
    service_name: str | None = None

    @property
    def metrics_on(self) -> bool:
        """Whether any metrics are exported (else none are even recorded)."""
        return self.metrics_listen is not None or self.otlp_metrics_endpoint is not None

    @property
    def on(self) -> bool:
        """Whether anything is exported: metrics or traces."""
        return self.metrics_on or self.traces.on


def load_telemetry_settings(env: Mapping[str, str]) -> TelemetrySettings:
    """The telemetry settings of env (empty values already dropped);
    ConfigError names the setting at fault."""
    listen = env.get(METRICS_LISTEN)
    if listen is not None:
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(
                METRICS_LISTEN, f"{listen!r} is not host:port (example: 127.0.0.1:9464)"
            )
    return TelemetrySettings(
        listen,
        _otlp_endpoint(env, "METRICS", "/v1/metrics"),
        _trace_settings(env),
        env.get("OTEL_SERVICE_NAME"),
    )


def _otlp_endpoint(env: Mapping[str, str], signal: str, path: str) -> str | None:
    exporters = env.get(f"OTEL_{signal}_EXPORTER")
    named = exporters is not None and "otlp" in _names(exporters)
    endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    if endpoint is None and (base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) is not None:
        endpoint = base.rstrip("/") + path
    if not named and (exporters is not None or endpoint is None):
        return None
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(name)
        if protocol is not None and protocol != "http/protobuf":
            raise ConfigError(name, f"only http/protobuf is supported, got {protocol!r}")
    # The OTLP/HTTP default (the specification's) when only the exporter is named.
    return endpoint or OTLP_DEFAULT + path


def _names(exporters: str) -> list[str]:
    return [e.strip() for e in exporters.split(",") if e.strip()]


def _trace_settings(env: Mapping[str, str]) -> TraceSettings:
    exporters = env.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        for name in _names(exporters):
            if name not in _EXPORTERS:
                raise ConfigError(
                    "OTEL_TRACES_EXPORTER", f"{name!r} is not one of otlp, console, none"
                )
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if sampler not in SAMPLERS:
        raise ConfigError("OTEL_TRACES_SAMPLER", f"{sampler!r} is not one of {', '.join(SAMPLERS)}")
    ratio = 1.0
    if "traceidratio" in sampler and (arg := env.get("OTEL_TRACES_SAMPLER_ARG")) is not None:
        try:
            ratio = float(arg)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError("OTEL_TRACES_SAMPLER_ARG", f"{arg!r} is not a ratio from 0 to 1")
    keys = env.get(TRACE_KEYS, "0")
    if keys not in ("0", "1"):
        raise ConfigError(TRACE_KEYS, f"{keys!r} is not 0 or 1")
    slow_ms = env.get(TRACE_SLOW_CALL_MS, "100")
    try:
        slow_call_s = float(slow_ms) / 1000
    except ValueError:
        slow_call_s = -1.0
    if not 0.0 <= slow_call_s < float("inf"):
        raise ConfigError(
            TRACE_SLOW_CALL_MS, f"{slow_ms!r} is not a number of milliseconds (0 or more)"
        )
    return TraceSettings(
        otlp_endpoint=_otlp_endpoint(env, "TRACES", "/v1/traces"),
        console="console" in _names(exporters or ""),
        sampler=sampler,
        ratio=ratio,
        record_keys=keys == "1",
        slow_call_s=slow_call_s,
    )

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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.domain.settings import ConfigError

METRICS_LISTEN = "GATEWAY_METRICS_LISTEN"
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    # host:port of the Prometheus listener; None: none.
    metrics_listen: str | None = None
    # The OTLP/HTTP metrics endpoint; None: no OTLP export.
    otlp_metrics_endpoint: str | None = None

    @property
    def metrics_on(self) -> bool:
        """Whether any metrics are exported (else none are even recorded)."""
        return self.metrics_listen is not None or self.otlp_metrics_endpoint is not None


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
    return TelemetrySettings(listen, _otlp_endpoint(env))


def _otlp_endpoint(env: Mapping[str, str]) -> str | None:
    exporters = env.get("OTEL_METRICS_EXPORTER")
    named = exporters is not None and "otlp" in (e.strip() for e in exporters.split(","))
    endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    if endpoint is None and (base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) is not None:
        endpoint = base.rstrip("/") + "/v1/metrics"
    if not named and (exporters is not None or endpoint is None):
        return None
    for name in _PROTOCOLS:
        protocol = env.get(name)
        if protocol is not None and protocol != "http/protobuf":
            raise ConfigError(name, f"only http/protobuf is supported, got {protocol!r}")
    # The OTLP/HTTP default (the specification's) when only the exporter is named.
    return endpoint or "http://localhost:4318/v1/metrics"

"""The gateway's telemetry as it runs: a MeterProvider of its own (no global
state, so that several gateways can share a process), read by Prometheus on
the metrics listener and by an OTLP exporter when one is configured.

With no exporter configured, build() returns None: nothing is wrapped or
recorded, and the SDK is not even imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.stream_limits import StreamLimits
from gateway.telemetry.instruments import GatewayMetrics
from gateway.telemetry.settings import METRICS_LISTEN, TelemetrySettings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

log = logging.getLogger("storagegw")
SERVICE_NAME = "storagegw"


@dataclass
class Telemetry:
    """One gateway's telemetry: its instruments, and what exports them."""

    settings: TelemetrySettings
    provider: MeterProvider
    metrics: GatewayMetrics
    registry: CollectorRegistry | None
    # The metrics listener's port once it listens (0 before, or without one).
    metrics_port: int = 0
    _server: WSGIServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def observe_stream_limits(self, limits: StreamLimits) -> None:
        """In-flight streams and the bytes they buffer, as gauges."""
        self.metrics.observe_streams(lambda: limits.active, lambda: limits.budget.used)

    def serve(self) -> None:
        """Start the metrics listener, if one is configured (OSError naming
        the setting when its address cannot be bound)."""
        listen = self.settings.metrics_listen
        if listen is None or self.registry is None:
            return
        from prometheus_client import start_http_server

        host, _, port = listen.rpartition(":")
        try:
            self._server, self._thread = start_http_server(
                int(port), host.strip("[]"), self.registry
            )
        except OSError as error:
            raise OSError(
                f"{METRICS_LISTEN}: cannot listen on {listen}: {error.strerror or error}"
            ) from None
        self.metrics_port = int(self._server.server_port)
        log.info("serving metrics on http://%s:%d/metrics", host, self.metrics_port)

    async def shutdown(self) -> None:
        """Stop the listener, then export what is left (OTLP) and stop."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        if self._stopped:  # a start that failed, then the gateway's stop
            return
        self._stopped = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.provider.shutdown()


def build(settings: TelemetrySettings) -> Telemetry | None:
    """The telemetry settings ask for, not yet serving; None when they ask for none."""
    if not settings.metrics_on:
        return None
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    readers: list[MetricReader] = []
    registry = None
    if settings.metrics_listen is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        # No otel_scope_* labels: every series comes from the one scope.
        readers.append(PrometheusMetricReader(registry=registry, scope_info_enabled=False))
    if settings.otlp_metrics_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=settings.otlp_metrics_endpoint)
        readers.append(PeriodicExportingMetricReader(exporter))
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names it.
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    # Exemplars link a measurement to the trace it was made in; with no traces
    # (yet) they only cost time on every measurement (about a third of it).
    exemplars = None if "OTEL_METRICS_EXEMPLAR_FILTER" in os.environ else AlwaysOffExemplarFilter()
    provider = MeterProvider(metric_readers=readers, resource=resource, exemplar_filter=exemplars)
    return Telemetry(settings, provider, GatewayMetrics(provider), registry)

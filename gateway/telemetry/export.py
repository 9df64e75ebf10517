"""The gateway's telemetry as it runs: a MeterProvider and a TracerProvider
of its own (no global state, so that several gateways can share a process),
the metrics read by Prometheus on the metrics listener and by an OTLP
exporter when one is configured, the spans exported over OTLP or to stdout.

With no exporter configured, build() returns None: nothing is wrapped or
recorded, and the SDK is not even imported. With traces on and metrics off,
the metrics are recorded (the same wrappers time the spans) but read by none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.stream_limits import StreamLimits
from gateway.domain.dedup import DedupStats
from gateway.telemetry.instruments import GatewayMetrics, HistogramTally
from gateway.telemetry.settings import METRICS_LISTEN, TelemetrySettings, TraceSettings
from gateway.telemetry.tracing import GatewayTracing

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
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
    # None when traces are off.
    tracer_provider: TracerProvider | None = None
    tracing: GatewayTracing | None = None
    # The metrics listener's port once it listens (0 before, or without one).
    metrics_port: int = 0
    _server: WSGIServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def observe_stream_limits(self, limits: StreamLimits) -> None:
        """In-flight streams and the bytes they buffer, as gauges."""
        self.metrics.observe_streams(lambda: limits.active, lambda: limits.budget.used)

    def observe_dedup(self, read: Callable[[], Mapping[str, DedupStats]]) -> None:
        """The dedup buckets' statistics, as gauges (gateway/dedup_sweep.py)."""
        self.metrics.observe_dedup(read)

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
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()  # exports the spans not yet sent


def build(settings: TelemetrySettings) -> Telemetry | None:
    """The telemetry settings ask for, not yet serving; None when they ask for none."""
    if not settings.on:
        return None
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader

    from gateway.telemetry.readers import HistogramPoints, OtlpReader, PrometheusReader

    resource = _resource(settings.service_name)
    # The gateway's histograms, which the readers add: filled in below, once
    # the instruments are made (from the provider the readers are given to).
    histograms: list[HistogramTally] = []
    readers: list[MetricReader] = []
    registry = None
    if settings.metrics_listen is not None:
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        points = HistogramPoints(histograms, resource, AggregationTemporality.CUMULATIVE)
        # No otel_scope_* labels: every series comes from the one scope.
        readers.append(PrometheusReader(points, registry=registry, scope_info_enabled=False))
    if settings.otlp_metrics_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=settings.otlp_metrics_endpoint)
        readers.append(OtlpReader(exporter, histograms, resource))
    # Exemplars link a measurement to the trace it was made in; they cost time
    # on every measurement (about a third of it), and the spans say as much.
    exemplars = None if "OTEL_METRICS_EXEMPLAR_FILTER" in os.environ else AlwaysOffExemplarFilter()
    provider = MeterProvider(metric_readers=readers, resource=resource, exemplar_filter=exemplars)
    telemetry = Telemetry(settings, provider, GatewayMetrics(provider), registry)
    histograms.extend(telemetry.metrics.histograms)
    if settings.traces.on:
        from opentelemetry.sdk.trace import SpanLimits, Tracer

        from gateway.telemetry.lean_spans import LeanTracer

        limits = SpanLimits()  # from OTEL_SPAN_* and OTEL_ATTRIBUTE_*, as the provider's
        telemetry.tracer_provider = _tracer_provider(settings.traces, resource, limits)
        tracer = telemetry.tracer_provider.get_tracer("storagegw")
        telemetry.tracing = GatewayTracing(
            tracer,
            settings.traces.record_keys,
            settings.traces.slow_call_s,
            # The SDK's tracer, unless OTEL_SDK_DISABLED made it a no-op one.
            lean_spans=LeanTracer(tracer, limits) if isinstance(tracer, Tracer) else None,
        )
    return telemetry


def _resource(service_name: str | None) -> Resource:
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create()
    if service_name is not None:
        resource = resource.merge(Resource({"service.name": service_name}))
    elif str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        # Neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names it.
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    return resource


def _tracer_provider(
    settings: TraceSettings, resource: Resource, limits: SpanLimits
) -> TracerProvider:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(sampler=_sampler(settings), resource=resource, span_limits=limits)
    if settings.otlp_endpoint is not None:
        from gateway.telemetry.otlp_spans import GatewaySpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(GatewaySpanExporter(endpoint=settings.otlp_endpoint))
        )
    if settings.console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def _sampler(settings: TraceSettings) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = settings.ratio
    samplers: dict[str, Sampler] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(ratio),
    }
    return samplers[settings.sampler]

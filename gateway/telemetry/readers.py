"""The metric readers (Prometheus, OTLP), each adding the gateway's
histograms (instruments.HistogramTally) to what it collects from the SDK, as
the SDK's own histograms would be: same name, unit, description, buckets,
and the reader's temporality. Imported only when metrics are on."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from gateway.telemetry.instruments import HistogramTally, Key

SCOPE = "storagegw"


class HistogramPoints:
    """One reader's view of the histograms: cumulative, or each collection's
    change (delta) from the last one it was given."""

    def __init__(
        self,
        histograms: Sequence[HistogramTally],
        resource: Resource,
        temporality: AggregationTemporality,
    ) -> None:
        self._histograms = histograms
        self._resource = resource
        self._temporality = temporality
        # Delta: per histogram, what the last collection saw, and when.
        self._last: dict[str, tuple[int, dict[Key, list[float]]]] = {}

    def add_to(self, data: MetricsData) -> MetricsData:
        now = time.time_ns()
        metrics = [m for h in self._histograms if (m := self._metric(h, now)) is not None]
        if not metrics:
            return data
        resources = list(data.resource_metrics)
        for r, resource_metrics in enumerate(resources):
            for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
                if scope_metrics.scope.name == SCOPE:
                    scopes = list(resource_metrics.scope_metrics)
                    scopes[s] = replace(scope_metrics, metrics=[*scope_metrics.metrics, *metrics])
                    resources[r] = replace(resource_metrics, scope_metrics=scopes)
                    return replace(data, resource_metrics=resources)
        scope = ScopeMetrics(InstrumentationScope(SCOPE), metrics, "")
        if resources:
            first = resources[0]
            resources[0] = replace(first, scope_metrics=[*first.scope_metrics, scope])
        else:
            resources.append(ResourceMetrics(self._resource, [scope], ""))
        return replace(data, resource_metrics=resources)

    def _metric(self, histogram: HistogramTally, now: int) -> Metric | None:
        points = histogram.snapshot()
        start = histogram.start_ns
        if self._temporality == AggregationTemporality.DELTA:
            start, last = self._last.get(histogram.name, (start, {}))
            self._last[histogram.name] = (now, {k: p for k, p in points})
            points = [(k, _minus(p, last.get(k))) for k, p in points]
            points = [(k, p) for k, p in points if p[-4]]
        if not points:
            return None
        data = Histogram(
            [
                HistogramDataPoint(
                    dict(attributes),
                    start,
                    now,
                    int(point[-4]),
                    point[-3],
                    [int(c) for c in point[:-4]],
                    histogram.bounds,
                    point[-2],
                    point[-1],
                )
                for attributes, point in points
            ],
            self._temporality,
        )
        return Metric(histogram.name, histogram.description, histogram.unit, data)


def _minus(point: list[float], last: list[float] | None) -> list[float]:
    """A point's change since last (min and max: the whole run's, as the
    change's own are not known)."""
    if last is None:
        return point
    change = [now - then for now, then in zip(point[:-2], last[:-2], strict=True)]
    return [*change, point[-2], point[-1]]


class PrometheusReader(PrometheusMetricReader):
    """Prometheus' reader, with the histograms (cumulative, as Prometheus' are)."""

    def __init__(self, points: HistogramPoints, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._points = points

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        super()._receive_metrics(self._points.add_to(metrics_data), timeout_millis, **kwargs)


class OtlpReader(PeriodicExportingMetricReader):
    """The periodic OTLP reader, with the histograms in its exporter's temporality."""

    def __init__(
        self, exporter: MetricExporter, histograms: Sequence[HistogramTally], resource: Resource
    ) -> None:
        super().__init__(exporter)
        # As OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE made the exporter prefer.
        preferred = exporter._preferred_temporality or {}
        temporality = preferred.get(HistogramInstrument, AggregationTemporality.CUMULATIVE)
        self._points = HistogramPoints(histograms, resource, temporality)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        super()._receive_metrics(self._points.add_to(metrics_data), timeout_millis, **kwargs)

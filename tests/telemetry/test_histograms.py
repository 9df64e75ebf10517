"""The gateway's histograms (HistogramTally, added by its readers) read as
the SDK's own histograms of the same values would: the same Prometheus text,
and over OTLP the same points, cumulative or delta."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest

from gateway.telemetry.instruments import DURATION_BUCKETS, HistogramTally, key
from gateway.telemetry.readers import SCOPE, HistogramPoints, OtlpReader, PrometheusReader

RESOURCE = Resource({"service.name": "storagegw"})
NAME, UNIT, DESCRIPTION = "storagegw.rpc.duration", "s", "calls, by method and status"
# On a bound, between bounds, below the first, past the last.
FIRST = [0.0005, 0.0007, 0.0, 3.0, 400.0, 0.0005]
SECOND = [0.02, 0.0005, 61.0]
PUT = {"method": "Put", "status": "OK"}
GET = {"method": "Get", "status": "NOT_FOUND"}


def _gauge(_: CallbackOptions) -> list[Observation]:
    return [Observation(1)]


def _provider(reader: MetricReader) -> MeterProvider:
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    # Both sides collect something besides the histogram, as the gateway does.
    provider.get_meter(SCOPE).create_observable_gauge("streams", callbacks=[_gauge])
    return provider


def _sdk_and_ours(
    sdk_reader: MetricReader, our_reader: Callable[[list[HistogramTally]], MetricReader]
) -> tuple[Callable[[Sequence[float]], None], MeterProvider, MeterProvider]:
    sdk = _provider(sdk_reader)
    histogram = sdk.get_meter(SCOPE).create_histogram(
        NAME,
        unit=UNIT,
        description=DESCRIPTION,
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )
    tally = HistogramTally(NAME, UNIT, DESCRIPTION, DURATION_BUCKETS)
    ours = _provider(our_reader([tally]))

    def record(values: Sequence[float]) -> None:
        for n, value in enumerate(values):
            attributes = PUT if n % 2 else GET
            histogram.record(value, attributes)
            tally.record(value, key(**attributes))

    return record, sdk, ours


def _text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def _lines(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines (the families' order is the collection's)."""
    return sorted(_text(registry).splitlines())


def test_prometheus_reads_the_same_text():
    sdk_registry, our_registry = CollectorRegistry(), CollectorRegistry()
    record, sdk, ours = _sdk_and_ours(
        PrometheusMetricReader(registry=sdk_registry, scope_info_enabled=False),
        lambda tallies: PrometheusReader(
            HistogramPoints(tallies, RESOURCE, AggregationTemporality.CUMULATIVE),
            registry=our_registry,
            scope_info_enabled=False,
        ),
    )
    record(FIRST)
    assert "storagegw_rpc_duration_seconds_bucket" in _text(our_registry)
    assert _lines(our_registry) == _lines(sdk_registry)
    record(SECOND)
    assert _lines(our_registry) == _lines(sdk_registry)
    sdk.shutdown()
    ours.shutdown()


class _Kept(MetricExporter):
    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={Histogram: temporality})
        self.exports: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass

    def points(self) -> dict[str, float]:
        """The last export's histogram points, by method: what a backend keeps."""
        data = self.exports[-1]
        metrics = [
            m
            for r in data.resource_metrics
            for s in r.scope_metrics
            for m in s.metrics
            if m.name == NAME
        ]
        if not metrics:  # a delta with nothing new
            return {}
        (metric,) = metrics
        assert (metric.unit, metric.description) == (UNIT, DESCRIPTION)
        assert isinstance(metric.data, HistogramData)
        assert metric.data.aggregation_temporality == self.temporality
        return {
            f"{p.attributes['method']} {name}": value
            for p in metric.data.data_points
            for name, value in [
                ("count", p.count),
                ("sum", p.sum),
                *((f"bucket {n}", c) for n, c in enumerate(p.bucket_counts)),
                *((f"bound {n}", b) for n, b in enumerate(p.explicit_bounds)),
            ]
        }

    @property
    def temporality(self) -> AggregationTemporality:
        return self._preferred_temporality[Histogram]


def _otlp_points(temporality: AggregationTemporality) -> None:
    sdk_export, our_export = _Kept(temporality), _Kept(temporality)
    slow = math.inf  # collected when asked (force_flush), not on a period
    record, sdk, ours = _sdk_and_ours(
        PeriodicExportingMetricReader(sdk_export, export_interval_millis=slow),
        lambda tallies: OtlpReader(our_export, tallies, RESOURCE),
    )
    for values in (FIRST, SECOND, []):
        record(values)
        sdk.force_flush()
        ours.force_flush()
        # A delta's sum is the difference of two cumulative sums: equal but for rounding.
        assert our_export.points() == pytest.approx(sdk_export.points(), rel=1e-9)
    sdk.shutdown()
    ours.shutdown()


def test_otlp_gets_the_same_cumulative_points():
    _otlp_points(AggregationTemporality.CUMULATIVE)


def test_otlp_gets_the_same_delta_points():
    _otlp_points(AggregationTemporality.DELTA)

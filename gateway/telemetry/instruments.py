"""Every instrument of the gateway, made once from a MeterProvider, and the
calls that record them.

Names are OpenTelemetry's (dotted, with a unit); the Prometheus exporter turns
storagegw.rpc.duration (s) into storagegw_rpc_duration_seconds, a counter in
bytes into ..._bytes_total. storage_bytes and storage_egress_bytes keep the
names svc-infra documents for its storage cost view: storage_bytes_total and
storage_egress_bytes_total. README.md's Metrics section lists them all.

Attributes are the few values an operator groups by (method, status, bucket,
backend, reason...): never a key, which is unbounded and may be personal data.

Counters are Tallies: plain integers per attribute set, added to on the event
loop and read by an observable instrument when the metrics are collected (a
scrape, an export). The SDK's synchronous counters cost microseconds per add
(its locks, attribute sets and exemplars), several times per small call; a
Tally costs a dict update. Histograms are HistogramTallies, for the same
reason; the API has no observable histogram, so the readers add them.
"""

from __future__ import annotations

import enum
import threading
import time
import tomllib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from gateway.domain.dedup import DedupStats

# An attribute set, hashable: (name, value) pairs in name order.
Key = tuple[tuple[str, str], ...]


def key(**attributes: str) -> Key:
    return tuple(sorted(attributes.items()))


class Tally:
    """A sum per attribute set, read by an observable counter. Only the event
    loop's thread adds; a collection in another thread reads a snapshot
    (copying a dict's items holds the GIL throughout)."""

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums: dict[Key, int] = {}

    def add(self, amount: int, attributes: Key) -> None:
        self._sums[attributes] = self._sums.get(attributes, 0) + amount

    def observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(total, dict(attrs)) for attrs, total in list(self._sums.items())]


class HistogramTally:
    """An explicit-bucket histogram per attribute set, as the SDK's histogram
    aggregates it (a value falls in the first bucket whose bound it does not
    exceed), recorded for about a tenth of the SDK's cost: its histograms
    make a measurement object, clean and hash the attributes once per reader,
    some 15 µs a value, and a small call records three or four values. The
    metric readers add the points to what they collect
    (gateway/telemetry/readers.py), with the name, unit and description here."""

    __slots__ = ("_lock", "_points", "bounds", "description", "name", "start_ns", "unit")

    def __init__(self, name: str, unit: str, description: str, bounds: Sequence[float]) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = tuple(bounds)
        self.start_ns = time.time_ns()
        # Per attribute set: [count per bucket..., count, sum, min, max].
        self._points: dict[Key, list[float]] = {}
        # A collection (another thread) must not see a value half recorded.
        self._lock = threading.Lock()

    def record(self, value: float, attributes: Key) -> None:
        with self._lock:
            point = self._points.get(attributes)
            if point is None:
                point = [0] * (len(self.bounds) + 1) + [0, 0, value, value]
                self._points[attributes] = point
            point[bisect_left(self.bounds, value)] += 1
            point[-4] += 1
            point[-3] += value
            if value < point[-2]:
                point[-2] = value
            if value > point[-1]:
                point[-1] = value

    def snapshot(self) -> list[tuple[Key, list[float]]]:
        """Each attribute set's point, copied: (counts per bucket..., count, sum, min, max)."""
        with self._lock:
            return [(attributes, list(point)) for attributes, point in self._points.items()]


# Seconds, from a small object's Head on local disk to a large transfer.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
HTTP_ROUTE = "/v1/b/{bucket}/o/{key}"
OK = "ok"


@dataclass(frozen=True)
class MetricSpec:
    """One entry of metrics.toml."""

    name: str
    unit: str
    kind: Literal["counter", "updown", "histogram", "gauge"]
    description: str


def _load_catalog() -> dict[str, MetricSpec]:
    text = resources.files(__package__).joinpath("metrics.toml").read_text(encoding="utf-8")
    return {attribute: MetricSpec(**spec) for attribute, spec in tomllib.loads(text).items()}


CATALOG = _load_catalog()


class Direction(enum.StrEnum):
    """Of object bytes, as seen from the gateway's clients."""

    RECEIVED = "received"  # written into a bucket (Put, uploads, signed PUT/POST, Copy)
    SENT = "sent"  # read out of a bucket (Get, signed GET, a Copy's source)


class CostClass(enum.StrEnum):
    """The storage providers' price classes of an operation."""

    A = "A"  # writes and lists
    B = "B"  # reads


class GatewayMetrics:
    """The instruments, one per entry of metrics.toml. Each front and wrapper
    records through these methods, with the attributes precomputed where they
    are fixed (a bucket's)."""

    rpc_duration: HistogramTally
    http_duration: HistogramTally
    backend_duration: HistogramTally
    rpc_errors: Tally
    signed_url_requests: Tally
    authentications: Tally
    transfer: Tally
    backend_errors: Tally
    operations: Tally
    storage_bytes: Tally
    egress_bytes: Tally
    uploads_open: Tally
    uploads_finished: Tally
    upload_persisted: Tally
    cleanup_sweeps: Tally
    cleanup_aborted: Tally
    cdn_purges: Tally

    def __init__(self, provider: MeterProvider) -> None:
        self._meter = provider.get_meter("storagegw")
        histograms: list[HistogramTally] = []
        for attribute, spec in CATALOG.items():
            if spec.kind == "histogram":
                histogram = HistogramTally(spec.name, spec.unit, spec.description, DURATION_BUCKETS)
                histograms.append(histogram)
                setattr(self, attribute, histogram)
            elif spec.kind in ("counter", "updown"):
                setattr(self, attribute, self._tally(spec))
        # What the metric readers add to each collection.
        self.histograms = tuple(histograms)

    def _tally(self, spec: MetricSpec) -> Tally:
        tally = Tally()
        make = (
            self._meter.create_observable_counter
            if spec.kind == "counter"
            else self._meter.create_observable_up_down_counter
        )
        make(spec.name, callbacks=[tally.observe], unit=spec.unit, description=spec.description)
        return tally

    def observe_streams(self, active: Callable[[], int], buffered: Callable[[], int]) -> None:
        """The stream limits' state, read when the metrics are collected (a
        scrape, an export): streams served, and chunk bytes in flight."""
        for spec, read in (
            (CATALOG["streams_active"], active),
            (CATALOG["streams_buffered"], buffered),
        ):
            self._meter.create_observable_gauge(
                spec.name, callbacks=[_observer(read)], unit=spec.unit, description=spec.description
            )

    def observe_dedup(self, read: Callable[[], Mapping[str, DedupStats]]) -> None:
        """The dedup buckets' statistics as their last sweeps found them
        ({bucket: stats}), read when the metrics are collected."""

        def gauge(value: Callable[[DedupStats], int]) -> Callable[..., Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                return [Observation(value(s), {"bucket": b}) for b, s in read().items()]

            return observe

        for name, value in (
            ("dedup_logical", lambda s: s.logical_bytes),
            ("dedup_stored", lambda s: s.stored_bytes),
            ("dedup_saved", lambda s: s.saved_bytes),
        ):
            spec = CATALOG[name]
            self._meter.create_observable_gauge(
                spec.name, callbacks=[gauge(value)], unit=spec.unit, description=spec.description
            )

    # --- the fronts -------------------------------------------------------------

    def rpc_finished(self, method: str, status: str, reason: str, seconds: float) -> None:
        """A gRPC call's end: status is the gRPC code's name, reason the
        ErrorInfo reason ("" when none)."""
        self.rpc_duration.record(seconds, (("method", method), ("status", status)))
        if reason:
            self.rpc_errors.add(1, key(method=method, status=status, reason=reason))

    def http_finished(self, method: str, status: int, reason: str, seconds: float) -> None:
        """A signed-URL request's end: reason is the X-Sgw-Reason of a refusal."""
        self.http_duration.record(
            seconds, (("method", method), ("route", HTTP_ROUTE), ("status", str(status)))
        )
        outcome = OK if status < 400 else reason or str(status)
        self.signed_url_requests.add(1, key(method=method, outcome=outcome))

    def authenticated(self, outcome: str, proof: str) -> None:
        self.authentications.add(1, key(outcome=outcome, proof=proof))

    def cdn_purge_reporter(self, bucket: str) -> Callable[[str, int], None]:
        """What a bucket's CDN purge queue calls with each outcome (sent,
        failed, dropped) and its number of keys."""
        return lambda outcome, keys: self.cdn_purges.add(keys, key(bucket=bucket, outcome=outcome))


def _observer(read: Callable[[], int]) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return (Observation(read()),)

    return observe

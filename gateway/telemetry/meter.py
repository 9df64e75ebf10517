"""One bucket's view of the instruments: its fixed attributes computed once,
and the timing of each call to its backend, with a child span of the call's
when traces are on (for a driver whose calls stay on the machine, only when
the call was slow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

from gateway.core import calllog
from gateway.domain.errors import GatewayError, Reason
from gateway.telemetry.instruments import OK, CostClass, Direction, GatewayMetrics, Key, key
from gateway.telemetry.tracing import BackendSpan, GatewayTracing

CANCELLED = "cancelled"


class BucketMeter:
    """Records what happens to one bucket's backend."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        bucket: str,
        backend: str,
        tracing: GatewayTracing | None = None,
        *,
        slow_only: bool = False,
    ) -> None:
        """slow_only: a span of a call only when it was slow (a driver whose
        calls stay on the machine: Capabilities.calls_stay_local)."""
        self.metrics = metrics
        self.tracing = tracing
        self.slow_only = slow_only
        self.bucket = bucket
        self.backend = backend
        where = {"bucket": bucket, "backend": backend}
        self._where = where
        self._here = key(**where)
        self._received = key(**where, direction=Direction.RECEIVED.value)
        self._sent = key(**where, direction=Direction.SENT.value)
        self._classes = {c: key(**where, **{"class": c.value}) for c in CostClass}
        self._backend_only = key(backend=backend)
        self._read_ok = key(**where, operation="read", outcome=OK)
        self._write_ok = key(**where, operation="write", outcome=OK)
        # (operation, outcome): the attributes of its duration.
        self._outcomes: dict[tuple[str, str], Key] = {}

    def call(
        self, operation: str, cost: CostClass | None = None, *, slow_only: bool = False
    ) -> TimedCall:
        """Time one backend call (`with meter.call("head", CostClass.B): ...`);
        slow_only: a span only when it is slow (GatewayTracing.slow_call_s),
        as every call is when the meter's driver's calls stay local."""
        if cost is not None:
            self.metrics.operations.add(1, self._classes[cost])
        return TimedCall(self, operation, slow_only or self.slow_only)

    def finished(self, operation: str, outcome: str, seconds: float) -> None:
        attributes = self._outcomes.get((operation, outcome))
        if attributes is None:  # a few operations, outcomes and reasons: kept
            attributes = key(**self._where, operation=operation, outcome=outcome)
            self._outcomes[operation, outcome] = attributes
        self.metrics.backend_duration.record(seconds, attributes)
        if outcome not in (OK, CANCELLED):
            errors = key(**self._where, operation=operation, reason=outcome)
            self.metrics.backend_errors.add(1, errors)

    def read_chunk(self, size: int, seconds: float) -> None:
        """A chunk the backend served after a wait of seconds on it: sent to a
        client, and storage egress."""
        self.metrics.backend_duration.record(seconds, self._read_ok)
        self.served(size)

    def served(self, size: int) -> None:
        """A chunk of size bytes the backend served, counted as sent to a
        client and as storage egress, and as one of the call's chunks (its
        span's); read_chunk adds the wait on the backend."""
        self.metrics.transfer.add(size, self._sent)
        self.metrics.egress_bytes.add(size, self._backend_only)
        if self.tracing is not None:
            calllog.current().chunks += 1

    async def write_chunk(self, write: Callable[[bytes], Awaitable[None]], data: bytes) -> None:
        """A chunk for the backend to take, received from a client: timed, and
        counted as received once taken."""
        started = time.perf_counter()
        try:
            await write(data)
        except Exception as error:
            self.finished("write", outcome_of(error), time.perf_counter() - started)
            raise
        self.metrics.backend_duration.record(time.perf_counter() - started, self._write_ok)
        self.metrics.transfer.add(len(data), self._received)
        if self.tracing is not None:
            calllog.current().chunks += 1

    def sized(self, size: int) -> None:
        """The size of the object the call reads or wrote, for its span."""
        if self.tracing is not None:
            calllog.current().object_size = size

    def stored(self, size: int) -> None:
        """An object of size bytes committed, for the call's tenant."""
        self.sized(size)
        principal = calllog.current().principal
        tenant = principal.id if principal.authenticated else self.bucket
        self.metrics.storage_bytes.add(size, key(backend=self.backend, tenant=tenant))

    def upload_started(self) -> None:
        self.metrics.uploads_open.add(1, self._here)

    def upload_finished(self, outcome: str) -> None:
        self.metrics.uploads_open.add(-1, self._here)
        self.metrics.uploads_finished.add(1, key(**self._where, outcome=outcome))

    def persisted(self, size: int) -> None:
        if size > 0:
            self.metrics.upload_persisted.add(size, self._here)

    def swept(self, outcome: str, aborted: int) -> None:
        self.metrics.cleanup_sweeps.add(1, key(**self._where, outcome=outcome))
        if aborted:
            self.metrics.cleanup_aborted.add(aborted, self._here)


def outcome_of(error: BaseException | None) -> str:
    """ok, cancelled, or the reason of the error a backend call raised
    (INTERNAL for anything but a GatewayError)."""
    if error is None:
        return OK
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return CANCELLED
    if isinstance(error, GatewayError):
        return str(error.reason)
    return str(Reason.INTERNAL)


class TimedCall:
    """A backend call being timed; records its duration and outcome on exit,
    and ends its span."""

    __slots__ = ("_meter", "_operation", "_slow_only", "_span", "_started", "_started_ns")

    def __init__(self, meter: BucketMeter, operation: str, slow_only: bool = False) -> None:
        self._meter = meter
        self._operation = operation
        self._slow_only = slow_only
        self._started = 0.0
        self._started_ns = 0
        self._span: BackendSpan | None = None

    def __enter__(self) -> None:
        meter = self._meter
        if meter.tracing is not None:
            if self._slow_only:
                self._started_ns = time.time_ns()
            else:
                self._span = meter.tracing.backend_span(
                    self._operation, meter.bucket, meter.backend
                )
        self._started = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self._started
        outcome = OK if error is None else outcome_of(error)
        self._meter.finished(self._operation, outcome, seconds)
        meter, tracing = self._meter, self._meter.tracing
        if self._span is not None:
            self._span.end(outcome)
        elif tracing is not None and self._slow_only and seconds >= tracing.slow_call_s:
            tracing.slow_backend_call(
                self._operation, meter.bucket, meter.backend, self._started_ns, outcome
            )

"""The caller's trace, carried to the gateway: when OpenTelemetry is
installed and a span is current, each call sends its W3C `traceparent` (and
`tracestate`) as metadata, and the gateway's span of the call joins the
caller's trace. Without OpenTelemetry, or outside a span, nothing is sent:
the client does not need OpenTelemetry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

try:
    from opentelemetry import context as _context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - OpenTelemetry is optional
    _propagator = None
else:
    _propagator = TraceContextTextMapPropagator()

__all__ = ["continued", "trace_metadata"]


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """traceparent (and tracestate) of the current span; () when none."""
    if _propagator is None:
        return ()
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return tuple(carrier.items())


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Within it, the trace traceparent names is the current one (the CLI's
    TRACEPARENT), so the calls made inside join it; as is without one."""
    if _propagator is None or not traceparent:
        yield
        return
    token = _context.attach(_propagator.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        _context.detach(token)

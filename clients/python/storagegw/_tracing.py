"""The caller's trace, carried to the gateway: when the application uses
OpenTelemetry and a span is current, each call sends its W3C `traceparent`
(and `tracestate`) as metadata, and the gateway's span of the call joins the
caller's trace. The client does not need OpenTelemetry, nor import it: an
application that traces has imported it already, and without it no span can
be current, so nothing is sent."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["continued", "trace_metadata"]

_propagator: TraceContextTextMapPropagator | None = None


def _loaded() -> TraceContextTextMapPropagator:
    global _propagator
    if _propagator is None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _propagator = TraceContextTextMapPropagator()
    return _propagator


def trace_metadata() -> tuple[tuple[str, str], ...]:
    """traceparent (and tracestate) of the current span; () when none."""
    if "opentelemetry.context" not in sys.modules:  # not in use: no span is current
        return ()
    carrier: dict[str, str] = {}
    _loaded().inject(carrier)
    return tuple(carrier.items())


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Within it, the trace traceparent names is the current one (the CLI's
    TRACEPARENT), so the calls made inside join it; as is without one, or
    without OpenTelemetry installed."""
    if not traceparent:
        yield
        return
    try:
        from opentelemetry import context
    except ImportError:
        yield
        return
    token = context.attach(_loaded().extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)

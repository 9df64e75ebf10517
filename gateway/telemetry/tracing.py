"""Traces: a server span per gRPC call and per signed-URL request, a child
span per backend call (only the slow ones of a driver whose calls stay on
the machine), and the W3C trace context (traceparent) of the caller
continued. The spans of the requests a driver sends to its store and of the
local driver's slow fsyncs are store_spans.py's.

The fronts start a call's span where they start its record (the interceptor,
the signed-URL _handle) and end it where they write its log line, with the
attributes the call's record holds by then (gateway/core/calllog.py); the
span is the current one in between, so the backend calls the call makes
(InstrumentedBackend's timed calls) become its children, and log lines
carry its ids. Object keys can be personal data: a span carries a key only
with GATEWAY_TRACE_KEYS=1, otherwise a hash of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.calllog import CallLog

if TYPE_CHECKING:
    from gateway.telemetry.lean_spans import LeanTracer

# W3C trace context only: baggage is the caller's business, not the gateway's.
_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = ("traceparent", "tracestate")
# Calls whose bytes flow into the gateway; the others' flow out.
_RECEIVING = frozenset({"Put", "HTTP PUT", "HTTP POST"})
HTTP_ROUTE = "/v1/b/{bucket}/o/{key}"


def fingerprint(text: str) -> str:
    """A short, stable stand-in for a value not to be recorded (a key, an
    upload id): equal values match across spans, the value is not shown."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span, in hex; ("", "") outside one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class CallSpan:
    """A call's server span, current until end()."""

    __slots__ = ("_record_keys", "_span", "_token")

    def __init__(self, span: Span, token: object, record_keys: bool) -> None:
        self._span = span
        self._token = token
        self._record_keys = record_keys

    @property
    def trace_id(self) -> str:
        """The span's trace id in hex ("" when not sampled: no trace to find)."""
        context = self._span.get_span_context()
        return format(context.trace_id, "032x") if context.trace_flags.sampled else ""

    def end(
        self,
        entry: CallLog,
        status: str,
        reason: str,
        *,
        grpc_code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        """End the span with what the call's record holds: status is the gRPC
        status name (the HTTP front's answer as one too), with the gRPC code
        or the HTTP status."""
        span = self._span
        try:
            if span.is_recording():
                # One set_attributes call: every call's end runs through here.
                attributes = self._attributes(entry, status)
                if grpc_code is not None:
                    attributes["rpc.grpc.status_code"] = grpc_code
                if http_status is not None:
                    attributes["http.response.status_code"] = http_status
                if reason:
                    attributes["storagegw.reason"] = reason
                span.set_attributes(attributes)
                if status != "OK":
                    span.set_status(StatusCode.ERROR, reason or status)
            span.end()
        finally:
            otel_context.detach(self._token)  # type: ignore[arg-type]

    def _attributes(self, entry: CallLog, status: str) -> dict[str, str | int]:
        attributes: dict[str, str | int] = {"storagegw.status": status}
        if entry.bucket:
            attributes["storagegw.bucket"] = entry.bucket
        if entry.key:
            if self._record_keys:
                attributes["storagegw.key"] = entry.key
            else:
                attributes["storagegw.key.sha256"] = fingerprint(entry.key)
        if entry.action:
            attributes["storagegw.action"] = entry.action
        if entry.principal.authenticated:
            attributes["enduser.id"] = entry.principal.id
        direction = "received" if entry.method in _RECEIVING else "sent"
        attributes[f"storagegw.bytes.{direction}"] = entry.bytes
        if entry.object_size >= 0:
            attributes["storagegw.object.size"] = entry.object_size
        if entry.chunks:
            attributes["storagegw.chunks"] = entry.chunks
        if entry.upload_id:
            attributes["storagegw.upload_id.sha256"] = fingerprint(entry.upload_id)
        return attributes


class GatewayTracing:
    """The gateway's tracer, and the spans the fronts and the backend wrapper make."""

    def __init__(
        self,
        tracer: trace.Tracer,
        record_keys: bool,
        slow_call_s: float = 0.1,
        lean_spans: LeanTracer | None = None,
    ) -> None:
        self.tracer = tracer
        # What starts the calls' server spans and their backend calls' spans:
        # the lean spans of lean_spans.py, made from the tracer's parts (None:
        # the tracer's own).
        self._lean_spans = lean_spans
        self.record_keys = record_keys
        # What is traced only when slow (a checkpoint: a large upload makes
        # many; every call of a driver whose calls stay local; an fsync) is
        # a span only when it took this long (GATEWAY_TRACE_SLOW_CALL_MS).
        self.slow_call_s = slow_call_s

    def start_rpc(
        self, service: str, method: str, metadata: Iterable[tuple[str, str | bytes]]
    ) -> CallSpan:
        """A gRPC call's span, continuing the trace its metadata names."""
        carrier = {k: v for k, v in metadata if k in _CARRIED and isinstance(v, str)}
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        return self._start(f"{service}/{method}", carrier, attributes)

    def start_http(self, method: str, headers: Mapping[str, str]) -> CallSpan:
        """A signed-URL request's span, continuing the trace its headers name."""
        carrier = {name: value for name in _CARRIED if (value := headers.get(name)) is not None}
        attributes = {"http.request.method": method, "http.route": HTTP_ROUTE}
        return self._start(f"{method} {HTTP_ROUTE}", carrier, attributes)

    def _start(self, name: str, carrier: dict[str, str], attributes: dict[str, str]) -> CallSpan:
        parent = _PROPAGATOR.extract(carrier) if carrier else otel_context.Context()
        if self._lean_spans is not None:
            span = self._lean_spans.start_span(name, parent, SpanKind.SERVER, attributes)
        else:
            span = self.tracer.start_span(
                name, context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return CallSpan(span, token, self.record_keys)

    def backend_span(self, operation: str, bucket: str, backend: str) -> BackendSpan | None:
        """A child span of the current call's for one backend call, current
        until it ends (the requests the driver sends for it become its
        children); None outside a recorded call (health probes, cleanup
        sweeps: no trace)."""
        if not trace.get_current_span().is_recording():
            return None
        span = self._start_backend(operation, bucket, backend, None)
        return BackendSpan(span, otel_context.attach(trace.set_span_in_context(span)))

    def slow_backend_call(
        self, operation: str, bucket: str, backend: str, started_ns: int, outcome: str
    ) -> None:
        """A backend call that took long, as a span made after the fact,
        from started_ns (time.time_ns()) to now."""
        if not trace.get_current_span().is_recording():
            return
        end_backend_span(self._start_backend(operation, bucket, backend, started_ns), outcome)

    def _start_backend(
        self, operation: str, bucket: str, backend: str, started_ns: int | None
    ) -> Span:
        """A backend call's span, a child of the current one, started at
        started_ns (None: now): a lean span, as the call's own is."""
        name = f"backend {operation}"
        attributes = {
            "storagegw.bucket": bucket,
            "storagegw.backend": backend,
            "storagegw.operation": operation,
        }
        if self._lean_spans is not None:
            parent = otel_context.get_current()
            return self._lean_spans.start_span(
                name, parent, SpanKind.CLIENT, attributes, started_ns
            )
        return self.tracer.start_span(
            name, kind=SpanKind.CLIENT, start_time=started_ns, attributes=attributes
        )


class BackendSpan:
    """A backend call's span, current until end()."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    def end(self, outcome: str) -> None:
        try:
            end_backend_span(self._span, outcome)
        finally:
            otel_context.detach(self._token)  # type: ignore[arg-type]


def end_backend_span(span: Span, outcome: str) -> None:
    """End a backend call's span with its outcome (ok, cancelled, or a reason)."""
    span.set_attribute("storagegw.outcome", outcome)
    if outcome != "ok":
        span.set_status(StatusCode.ERROR, outcome)
    span.end()

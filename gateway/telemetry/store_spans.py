"""What a driver reports of its work (gateway/backends/observer.py), as spans:
a client span per HTTP request a remote driver sends to its store, a child of
the backend call's span that sent it, and a span per fsync of the local
driver that took GATEWAY_TRACE_SLOW_CALL_MS or longer.

Attributes follow OpenTelemetry's HTTP client conventions (and its RPC ones
for the store's operation name). The URL's path names an object's key, which
can be personal data: recorded only as GATEWAY_TRACE_KEYS allows, like a
key; a query string never is (the driver does not even report it).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from gateway.backends.observer import StoreRequest
from gateway.telemetry.tracing import GatewayTracing

FSYNC = "local fsync"


class StoreSpans:
    """Implements StoreObserver for one bucket's driver."""

    def __init__(self, tracing: GatewayTracing, bucket: str, backend: str) -> None:
        self._tracing = tracing
        self._where = {"storagegw.bucket": bucket, "storagegw.backend": backend}

    def request_started(self, request: StoreRequest) -> RequestSpan | None:
        # Outside a recorded call (health probes, sweeps, an unsampled call): none.
        if not trace.get_current_span().is_recording():
            return None
        attributes: dict[str, str | int] = {
            **self._where,
            "storagegw.store.bucket": request.store_bucket,
            "http.request.method": request.method,
            "server.address": request.host,
            "url.scheme": request.scheme,
        }
        if request.port is not None:
            attributes["server.port"] = request.port
        if self._tracing.record_keys:
            attributes["url.path"] = request.path
        if request.resend_count:
            attributes["http.request.resend_count"] = request.resend_count
        if request.operation:
            attributes["rpc.service"] = request.service
            attributes["rpc.method"] = request.operation
        span = self._tracing.tracer.start_span(
            f"{request.service} {request.operation or request.method}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return RequestSpan(span)

    def fsynced(self, path: str, started_ns: int, ended_ns: int) -> None:
        tracing = self._tracing
        if (ended_ns - started_ns) / 1e9 < tracing.slow_call_s:
            return
        if not trace.get_current_span().is_recording():
            return
        span = tracing.tracer.start_span(
            FSYNC, kind=SpanKind.INTERNAL, start_time=started_ns, attributes=self._where
        )
        if tracing.record_keys:
            # A key's directory, or a temp file: its path can name a key.
            span.set_attribute("file.path", path)
        span.end(end_time=ended_ns)


class RequestSpan:
    """Implements ObservedRequest: the span of one request to the store."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def finished(self, status: int | None, error: BaseException | None = None) -> None:
        span = self._span
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
        elif error is not None:
            # The exception's type, not its message: a message can quote the
            # URL, query string included.
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(StatusCode.ERROR)
        span.end()

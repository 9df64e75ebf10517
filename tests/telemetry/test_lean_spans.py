"""The calls' server spans are lean spans (gateway/telemetry/lean_spans.py),
made without the SDK's Span object: the same span as the SDK's Tracer would
make, field by field and in OTLP bytes, sampled as its sampler says, the
caller's trace continued, and children parented on it. These tests fail
when an SDK release changes what the parts a lean span is made of do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
    sampling,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.calllog import CallLog
from gateway.domain.identity import Principal, Proof
from gateway.telemetry.lean_spans import LeanSpan, LeanTracer
from gateway.telemetry.otlp_spans import SpanEncoder
from gateway.telemetry.tracing import GatewayTracing, fingerprint
from storagegw import Client, PreconditionFailed
from tests.conftest import run_gateway
from tests.telemetry.spans import SpanRecorder, children, count, server_spans
from tests.telemetry.test_traces import PUT, SERVICE

CALLER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331
SAMPLED = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01"
NOT_SAMPLED = f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-00"
SLOW_CALL_START = 1_700_000_000_000_000_000


class CountingIds(IdGenerator):
    """Ids in sequence, so that two tracers made alike give the same ones."""

    def __init__(self) -> None:
        self._next = 0x1000

    def _take(self) -> int:
        self._next += 1
        return self._next

    def generate_span_id(self) -> int:
        return self._take()

    def generate_trace_id(self) -> int:
        return self._take() << 64 | 0xABC


def _spans(
    lean: bool,
    limits: SpanLimits,
    metadata: list[tuple[str, str]],
    started: SpanProcessor | None = None,
) -> list[ReadableSpan]:
    """A Put's server span with a backend call's span beneath it, as the
    gateway makes them, with lean spans or with the SDK's Tracer."""
    recorder = SpanRecorder()
    provider = TracerProvider(
        sampler=sampling.ParentBased(sampling.ALWAYS_ON),
        resource=Resource({"service.name": "storagegw-test"}),
        id_generator=CountingIds(),
        span_limits=limits,
    )
    provider.add_span_processor(recorder.processor)
    if started is not None:
        provider.add_span_processor(started)
    tracer = provider.get_tracer("storagegw")
    lean_tracer = LeanTracer(tracer, limits) if lean else None  # type: ignore[arg-type]
    tracing = GatewayTracing(tracer, record_keys=False, slow_call_s=0, lean_spans=lean_tracer)
    entry = CallLog(
        "Put",
        bucket="default",
        key="a/b.bin",
        bytes=4096,
        action="write",
        reason="PRECONDITION_FAILED",
        principal=Principal("alice", Proof.API_KEY),
    )
    entry.object_size, entry.chunks, entry.upload_id = 4096, 1, "upload-1"
    call = tracing.start_rpc(SERVICE, "Put", metadata)
    backend = tracing.backend_span("commit", "default", "memory")
    assert backend is not None
    backend.end("PRECONDITION_FAILED")
    # A slow call's span, made once it is over, from when it began.
    tracing.slow_backend_call("open_read", "default", "local", SLOW_CALL_START, "ok")
    call.end(entry, "FAILED_PRECONDITION", entry.reason, grpc_code=9)
    provider.shutdown()
    return list(recorder.get_finished_spans())


class StartedNames(SpanProcessor):
    """The names of the SDK Span objects started."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self.names.append(span.name)


def _started(lean: bool, limits: SpanLimits, metadata: list[tuple[str, str]]) -> list[str]:
    """The SDK Spans started while the spans of _spans are made, by name, in start order."""
    started = StartedNames()
    _spans(lean, limits, metadata, started)
    return started.names


def _timeless(span: ReadableSpan) -> ReadableSpan:
    """The span with fixed start and end times (all else as it is)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=1_000,
        end_time=2_000,
        instrumentation_scope=span.instrumentation_scope,
    )


@pytest.mark.parametrize(
    "limits",
    [SpanLimits(), SpanLimits(max_span_attributes=5, max_span_attribute_length=4)],
    ids=["default limits", "limits that cut"],
)
@pytest.mark.parametrize("metadata", [[], [("traceparent", SAMPLED)]], ids=["root", "continued"])
def test_a_lean_span_is_the_span_the_sdks_tracer_makes(limits, metadata):
    lean, sdk = _spans(True, limits, metadata), _spans(False, limits, metadata)
    names = ["backend commit", "backend open_read", f"{SERVICE}/Put"]
    assert [s.name for s in lean] == [s.name for s in sdk] == names
    for span, expected in zip(lean, sdk, strict=True):
        assert span.kind is expected.kind
        assert span.context == expected.context
        assert span.parent == expected.parent
        assert list(span.attributes.items()) == list(expected.attributes.items())
        assert span.dropped_attributes == expected.dropped_attributes
        assert span.status.status_code is expected.status.status_code
        assert span.status.description == expected.status.description
        assert span.resource == expected.resource
        assert span.instrumentation_scope == expected.instrumentation_scope
        assert (span.events, span.links) == (tuple(expected.events), tuple(expected.links))
    # Made as lean spans: no SDK Span object was started (the SDK's Tracer
    # starts each span it makes in its processors).
    assert _started(True, limits, metadata) == []
    assert _started(False, limits, metadata) == [names[2], names[0], names[1]]
    commit, slow, server = lean
    assert server.kind is SpanKind.SERVER
    assert server.status.status_code is StatusCode.ERROR
    assert server.status.description == "PRECONDITION_FAILED"
    assert (commit.kind, slow.kind) == (SpanKind.CLIENT, SpanKind.CLIENT)
    assert commit.status.description == "PRECONDITION_FAILED"
    assert slow.attributes["storagegw.outcome"] == "ok"
    assert server.start_time is not None
    assert server.end_time is not None
    assert server.start_time <= commit.start_time <= commit.end_time <= server.end_time
    # The slow call's span begins when the call did, as the SDK's would.
    assert slow.start_time == sdk[1].start_time == SLOW_CALL_START
    # The backend calls' spans are the lean span's children, in its trace.
    assert children(lean, server) == [commit, slow]
    encoder = SpanEncoder()
    assert encoder.encode([_timeless(s) for s in lean]) == encoder.encode(
        [_timeless(s) for s in sdk]
    )
    if metadata:
        assert server.context.trace_id == CALLER_TRACE
        assert server.parent is not None
        assert server.parent.span_id == CALLER_SPAN
        assert server.parent.is_remote


def test_a_lean_span_records_events_and_exceptions_and_nothing_once_ended():
    recorder = SpanRecorder()
    provider = TracerProvider()
    provider.add_span_processor(recorder.processor)
    tracer = provider.get_tracer("storagegw")
    span = LeanTracer(tracer, SpanLimits()).start_span(  # type: ignore[arg-type]
        "call", otel_context.Context(), SpanKind.SERVER, {"rpc.method": "Put"}
    )
    assert isinstance(span, LeanSpan)
    assert span.is_recording()
    span.add_event("retried", {"attempt": 2})
    span.record_exception(ValueError("bad input"))
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR, "ignored: OK is final")
    span.end()
    assert not span.is_recording()
    span.set_attribute("late", 1)
    span.end()
    (ended,) = recorder.get_finished_spans()
    assert [e.name for e in ended.events] == ["retried", "exception"]
    assert ended.events[1].attributes["exception.type"] == "ValueError"
    assert ended.events[1].attributes["exception.message"] == "bad input"
    assert ended.status.status_code is StatusCode.OK
    assert "late" not in ended.attributes
    provider.shutdown()


@contextmanager
def _in_trace(traceparent: str) -> Iterator[None]:
    """The caller's trace current, as an application that traces has it."""
    caller = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    token = otel_context.attach(caller)
    try:
        yield
    finally:
        otel_context.detach(token)


def _exported(exports: list[tuple[str, bytes]]) -> list[OtlpSpan]:
    return [
        span
        for path, body in exports
        if path == "/v1/traces"
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def _value(any_value) -> object:
    return getattr(any_value, any_value.WhichOneof("value"))


def test_the_otlp_receiver_gets_the_calls_span_in_the_callers_trace(receiver, tmp_path: Path):
    url, exports = receiver
    env = {
        "STORAGE_BACKEND": "memory",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_METRICS_EXPORTER": "none",
        "GATEWAY_TRACE_SLOW_CALL_MS": "0",
    }
    recorder = SpanRecorder()
    with run_gateway(env, tmp_path) as running:
        running.gateway.telemetry.tracer_provider.add_span_processor(recorder.processor)
        with _in_trace(SAMPLED), Client(running.target) as client:
            client.put_bytes("lean.bin", b"l" * 1000)
            with pytest.raises(PreconditionFailed):
                client.put_bytes("lean.bin", b"m" * 10, if_none_match="*")
        put, refused = server_spans(recorder.wait_for(count(PUT, 2)), PUT)
    # Stopping the gateway exported what it had not sent.
    by_id = {span.span_id: span for span in _exported(exports)}
    sent = by_id[put.context.span_id.to_bytes(8, "big")]
    assert sent.name == PUT
    assert sent.kind == OtlpSpan.SPAN_KIND_SERVER
    assert sent.trace_id == CALLER_TRACE.to_bytes(16, "big")
    assert sent.parent_span_id == CALLER_SPAN.to_bytes(8, "big")
    assert {a.key: _value(a.value) for a in sent.attributes} == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Put",
        "storagegw.status": "OK",
        "storagegw.bucket": "default",
        "storagegw.key.sha256": fingerprint("lean.bin"),
        "storagegw.action": "write",
        "storagegw.bytes.received": 1000,
        "storagegw.object.size": 1000,
        "storagegw.chunks": 1,
        "rpc.grpc.status_code": 0,
    }
    assert sent.status.code == 0  # unset
    assert sent.start_time_unix_nano < sent.end_time_unix_nano
    failed = by_id[refused.context.span_id.to_bytes(8, "big")]
    assert failed.trace_id == sent.trace_id
    assert {a.key: _value(a.value) for a in failed.attributes}["storagegw.reason"] == (
        "PRECONDITION_FAILED"
    )
    assert failed.status.code == 2  # error
    assert failed.status.message == "PRECONDITION_FAILED"
    # The backend calls' spans are the server span's children.
    beneath = {s.name for s in by_id.values() if s.parent_span_id == sent.span_id}
    assert beneath == {"backend open_write", "backend commit"}


def test_a_call_its_caller_did_not_sample_makes_no_span_and_no_child(receiver, tmp_path: Path):
    url, exports = receiver
    env = {
        "STORAGE_BACKEND": "memory",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_METRICS_EXPORTER": "none",
        # parentbased_always_on (the default) follows the caller's decision.
        "GATEWAY_TRACE_SLOW_CALL_MS": "0",
    }
    recorder = SpanRecorder()
    with run_gateway(env, tmp_path) as running:
        running.gateway.telemetry.tracer_provider.add_span_processor(recorder.processor)
        with Client(running.target) as client:
            with _in_trace(NOT_SAMPLED):
                client.put_bytes("unsampled.bin", b"u" * 100)
                assert client.get_bytes("unsampled.bin") == b"u" * 100
            # Then a call the gateway samples, so that the spans above had their chance.
            client.put_bytes("sampled.bin", b"s" * 100)
        (sampled,) = server_spans(recorder.wait_for(count(PUT, 1)), PUT)
    spans = recorder.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {sampled.context.trace_id}
    assert sampled.context.trace_id != CALLER_TRACE
    exported = {s.trace_id for s in _exported(exports)}
    assert exported == {sampled.context.trace_id.to_bytes(16, "big")}


class CountingParentBased(sampling.ParentBased):
    """The default sampler (parentbased_always_on), counting what it is asked."""

    def __init__(self) -> None:
        super().__init__(sampling.ALWAYS_ON)
        self.asked = 0

    def should_sample(self, *args, **kwargs) -> sampling.SamplingResult:  # type: ignore[no-untyped-def]
        self.asked += 1
        return super().should_sample(*args, **kwargs)


SAMPLERS = {
    "always_on": sampling.ALWAYS_ON,
    "always_off": sampling.ALWAYS_OFF,
    "traceidratio": sampling.TraceIdRatioBased(0.5),
    "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(0.5),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("metadata", [[], [("traceparent", SAMPLED)]], ids=["root", "continued"])
def test_a_lean_spans_sampling_is_the_sdks_for_each_sampler(name, metadata):
    made = []
    for lean in (True, False):
        provider = TracerProvider(sampler=SAMPLERS[name], id_generator=CountingIds())
        tracer = provider.get_tracer("storagegw")
        tracing = GatewayTracing(
            tracer, record_keys=False, lean_spans=LeanTracer(tracer, SpanLimits()) if lean else None
        )
        spans = []
        for _ in range(8):  # a ratio samples some of them
            call = tracing.start_rpc(SERVICE, "Get", metadata)
            span = trace.get_current_span()  # the call's, until it ends
            attributes = getattr(span, "attributes", None)
            spans.append((span.is_recording(), span.get_span_context(), dict(attributes or {})))
            call.end(CallLog("Get"), "OK", "", grpc_code=0)
        made.append(spans)
        provider.shutdown()
    lean_made, sdk_made = made
    assert lean_made == sdk_made


def test_a_call_of_its_own_is_sampled_without_asking_an_always_on_sampler():
    sampler = CountingParentBased()
    provider = TracerProvider(sampler=sampler)
    tracer = provider.get_tracer("storagegw")
    tracing = GatewayTracing(tracer, record_keys=False, lean_spans=LeanTracer(tracer, SpanLimits()))
    call = tracing.start_rpc(SERVICE, "Get", [])
    assert trace.get_current_span().is_recording()
    assert trace.get_current_span().get_span_context().trace_flags.sampled
    call.end(CallLog("Get"), "OK", "", grpc_code=0)
    assert sampler.asked == 0
    # A call in its caller's trace is the sampler's to decide, as the caller's flag says.
    for traceparent, sampled in ((SAMPLED, True), (NOT_SAMPLED, False)):
        call = tracing.start_rpc(SERVICE, "Get", [("traceparent", traceparent)])
        assert trace.get_current_span().get_span_context().trace_flags.sampled is sampled
        call.end(CallLog("Get"), "OK", "", grpc_code=0)
    assert sampler.asked == 2
    provider.shutdown()

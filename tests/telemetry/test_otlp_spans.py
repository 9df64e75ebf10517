"""The gateway's own OTLP span encoder writes what the SDK's encoder writes,
byte for byte, for the spans the gateway makes and for those it leaves to
the SDK's encoder (events, links, lists as values); its exporter sends that
to an OTLP/HTTP receiver."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from gateway.telemetry.otlp_spans import GatewaySpanExporter, SpanEncoder


def _spans() -> list[ReadableSpan]:
    """Spans of every shape: a remote parent with a trace state, local
    children, scalars of each type (negative, empty, unicode), an error
    status, events, links, a list value, two tracers and two resources."""
    memory = InMemorySpanExporter()
    resource = Resource({"service.name": "storagegw", "host.count": 2}, "https://schema/1")
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    other = TracerProvider(resource=Resource({"service.name": "other"}))
    other.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("storagegw")
    versioned = provider.get_tracer("lib", "1.2", schema_url="https://schema/2")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1"), ("other", "y")]),
    )
    server = tracer.start_span(
        "storagegw.v1.StorageService/Put",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.method": "Put"},
    )
    server.set_attributes(
        {
            "storagegw.status": "INVALID_ARGUMENT",
            "storagegw.bytes.received": 4096,
            "storagegw.negative": -5,
            "storagegw.big": (1 << 63) - 1,
            "storagegw.empty": "",
            "storagegw.key": "clé/ü/😀",
            "storagegw.ratio": 0.25,
            "storagegw.flag": True,
            "storagegw.off": False,
            "storagegw.zero": 0,
        }
    )
    server.set_status(StatusCode.ERROR, "BAD_KEY")
    child_context = trace.set_span_in_context(server)
    child = tracer.start_span("backend head", context=child_context, kind=SpanKind.CLIENT)
    child.set_status(StatusCode.OK)
    child.end()
    evented = tracer.start_span("with an event", context=child_context)
    evented.add_event("retry", {"attempt": 2})
    evented.end()
    linked = versioned.start_span("linked", links=[Link(remote, {"why": "batch"})])
    linked.set_attribute("storagegw.list", ["a", "b"])
    linked.end()
    plain = versioned.start_span("plain", kind=SpanKind.INTERNAL)
    plain.end()
    elsewhere = other.get_tracer("storagegw").start_span("elsewhere", kind=SpanKind.PRODUCER)
    elsewhere.end()
    server.end()
    return list(memory.get_finished_spans())


def test_the_encoding_is_the_sdks_byte_for_byte():
    spans = _spans()
    encoder = SpanEncoder()
    expected = encode_spans(spans).SerializePartialToString()
    assert encoder.encode(spans) == expected
    # Again, now from what it kept of the first batch.
    assert encoder.encode(spans) == expected
    assert encoder.encode(spans[:1]) == encode_spans(spans[:1]).SerializePartialToString()


def test_what_is_encoded_reads_back_as_the_spans():
    spans = _spans()
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    names = [s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert sorted(names) == sorted(span.name for span in spans)
    server = next(
        s
        for r in request.resource_spans
        for ss in r.scope_spans
        for s in ss.spans
        if s.name.endswith("/Put")
    )
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["storagegw.key"].string_value == "clé/ü/😀"
    assert attributes["storagegw.negative"].int_value == -5
    assert attributes["storagegw.bytes.received"].int_value == 4096
    assert server.parent_span_id == (0xB7AD6B7169203331).to_bytes(8, "big")
    assert server.trace_state == "vendor=x1,other=y"
    assert server.status.message == "BAD_KEY"


def test_the_exporter_sends_the_encoded_spans(receiver):
    url, exports = receiver
    spans = _spans()
    exporter = GatewaySpanExporter(f"{url}/v1/traces")
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert exports == [("/v1/traces", encode_spans(spans).SerializePartialToString())]
    # Once shut down, it refuses, as the SDK's exporter does.
    assert exporter.export(spans) is SpanExportResult.FAILURE

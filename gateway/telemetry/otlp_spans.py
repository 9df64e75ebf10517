"""The spans' OTLP/HTTP exporter, with an encoder of its own.

The SDK's exporter builds a protobuf message per span, attribute and value
(about 50 µs a span), and with every call traced that is the largest part of
what tracing costs. A gateway's spans repeat themselves: the same names, the
same few attribute values (method, bucket, status). So the request is written
here directly in protobuf's wire format, each attribute's encoding kept once
made; a span with anything else (events, links, a list as a value) is
encoded by the SDK's own encoder, and the request is the same either way
(tests/telemetry/test_otlp_spans.py holds the two to the same bytes).
Everything else (endpoint, headers, timeout, compression, retries) stays the
SDK exporter's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from gateway.domain.varint import varint

# OTLP's SpanKind numbers the API's kinds from 1 (0 is "unspecified").
_KINDS = {kind: kind.value + 1 for kind in SpanKind}
# Span.flags: whether the parent is remote is known (and, with 0x200, it is).
_FLAGS_KNOWN = struct.pack("<I", 0x100)
_FLAGS_REMOTE = struct.pack("<I", 0x300)
_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
# Attribute encodings kept; key hashes and sizes vary per call, so the cache
# is emptied when full rather than let grow.
_CACHE_LIMIT = 4096
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (tag: field number << 3 | 2)."""
    return varint(tag) + varint(len(payload)) + payload


def _any_value(value: object) -> bytes | None:
    """An AnyValue of a scalar; None for what the SDK's encoder must do."""
    if isinstance(value, str):
        return _field(0x0A, value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value) if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    return None


class SpanEncoder:
    """Writes an ExportTraceServiceRequest for a batch of spans, as the SDK's
    encode_spans(spans).SerializePartialToString() would."""

    def __init__(self) -> None:
        self._attributes: dict[tuple[str, type, object], bytes] = {}
        self._names: dict[str, bytes] = {}
        # By identity, holding the object (so that its id is not reused): a
        # resource's hash is costly, and the gateway's spans share one.
        self._resources: dict[int, tuple[Resource, bytes]] = {}
        # By value, as the SDK's encoder groups them: the server spans' scope
        # (lean_spans.py) is another object than the SDK tracer's, and equal.
        self._scopes: dict[InstrumentationScope | None, bytes] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        # Resource, then scope, then spans, as the SDK's encoder groups them.
        groups: dict[int, dict[InstrumentationScope | None, list[bytes]]] = {}
        for span in spans:
            resource_id = self._resource(span)
            scope = span.instrumentation_scope
            if scope not in self._scopes:
                message = encode_spans([span]).resource_spans[0].scope_spans[0].scope
                self._scopes[scope] = _field(0x0A, message.SerializeToString())
            groups.setdefault(resource_id, {}).setdefault(scope, []).append(self._span(span))
        out = []
        for resource_id, scopes in groups.items():
            resource, resource_bytes = self._resources[resource_id]
            body = [resource_bytes]
            for scope, encoded in scopes.items():
                parts = [self._scopes[scope], *encoded]
                if scope is not None and scope.schema_url:
                    parts.append(_field(0x1A, scope.schema_url.encode()))
                body.append(_field(0x12, b"".join(parts)))
            if resource.schema_url:
                body.append(_field(0x1A, resource.schema_url.encode()))
            out.append(_field(0x0A, b"".join(body)))
        return b"".join(out)

    def _resource(self, span: ReadableSpan) -> int:
        resource = span.resource
        key = id(resource)
        if key not in self._resources:
            message = encode_spans([span]).resource_spans[0].resource
            self._resources[key] = (resource, _field(0x0A, message.SerializeToString()))
        return key

    def _span(self, span: ReadableSpan) -> bytes:
        """The span as a ScopeSpans.spans field."""
        plain = not (span.events or span.links or span.dropped_events or span.dropped_links)
        try:
            fast = self._span_fields(span) if plain else None
        except UnicodeEncodeError:  # a lone surrogate: the SDK's encoder drops the attribute
            fast = None
        if fast is None:
            message = encode_spans([span]).resource_spans[0].scope_spans[0].spans[0]
            fast = message.SerializeToString()
        return _field(0x12, fast)

    def _span_fields(self, span: ReadableSpan) -> bytes | None:
        context = span.context
        parent = span.parent
        if context is None:
            return None
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state:
            state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
            parts.append(_field(0x1A, state.encode()))
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        name = self._names.get(span.name)
        if name is None:
            name = _field(0x2A, span.name.encode())
            if len(self._names) < _CACHE_LIMIT:
                self._names[span.name] = name
        parts.append(name)
        kind = _KINDS[span.kind]
        if kind:
            parts.append(b"\x30" + varint(kind))
        if span.start_time:
            parts.append(b"\x39" + _FIXED64.pack(span.start_time))
        if span.end_time:
            parts.append(b"\x41" + _FIXED64.pack(span.end_time))
        if span.attributes:
            attributes = self._attributes
            for key, value in span.attributes.items():
                cache_key = (key, type(value), value)
                encoded = attributes.get(cache_key)
                if encoded is None:
                    any_value = _any_value(value)
                    if any_value is None:
                        return None
                    encoded = _field(0x4A, _key_value(key, any_value))
                    if len(attributes) >= _CACHE_LIMIT:
                        attributes.clear()
                    attributes[cache_key] = encoded
                parts.append(encoded)
        if span.dropped_attributes:
            parts.append(b"\x50" + varint(span.dropped_attributes))
        status = span.status
        status_fields = b""
        if status.description:
            status_fields += _field(0x12, status.description.encode())
        if status.status_code is not StatusCode.UNSET:
            status_fields += b"\x18" + varint(status.status_code.value)
        parts.append(_field(0x7A, status_fields))
        parts.append(b"\x85\x01" + (_FLAGS_REMOTE if parent and parent.is_remote else _FLAGS_KNOWN))
        return b"".join(parts)


def _key_value(key: str, any_value: bytes) -> bytes:
    return (_field(0x0A, key.encode()) if key else b"") + _field(0x12, any_value)


class GatewaySpanExporter(OTLPSpanExporter):
    """OTLPSpanExporter, with the encoder above."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint=endpoint)
        self._encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return super().export(spans)  # the SDK's refusal, and its warning
        result = self._client.export(self._encoder.encode(spans))
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE

"""The server span of each call, and the spans of its backend calls, made
without the SDK's Span object.

The SDK's Tracer.start_span builds a Span with a lock, bounded attribute and
event containers and a check of every attribute, and its end copies all of
that into a ReadableSpan: some 100 µs of the event loop's time per call, the
largest part of what tracing every call costs. The gateway's spans are
simpler: each is started and ended on the event loop, its attributes are the
gateway's own (str and int), and it has no links. So are the spans of the
backend calls, including one made after the fact for a call that was slow
(which on a loaded gateway can be a local read that waited for a thread).

So the spans are made here from the same parts the SDK's Tracer uses, all
public: its sampler (parent-based or not, as OTEL_TRACES_SAMPLER says), its
id generator, its resource, its instrumentation scope and its span
processor. Its attributes go in a plain dict, and at its end one
ReadableSpan is handed to the processor's on_end, as the SDK's Span.end
would.

What the SDK's span does that this one does not: the processors' on_start
and _on_ending (the gateway's processors, BatchSpanProcessor and
SimpleSpanProcessor, do nothing there) and the SDK's own internal metrics
(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED). Span limits (OTEL_SPAN_*,
OTEL_ATTRIBUTE_*) are applied at the end when they would cut anything.
tests/telemetry/test_lean_spans.py holds a lean span to the SDK's, field by
field and in OTLP bytes, so that an SDK that changes what these parts do
fails there.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from time import time_ns

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, Tracer, sampling
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)


class LeanTracer:
    """Starts spans with an SDK Tracer's sampler, ids, resource, scope and processor."""

    def __init__(self, tracer: Tracer, limits: SpanLimits) -> None:
        self._sampler = tracer.sampler
        self._ids = tracer.id_generator
        self._processor = tracer.span_processor
        self._resource = tracer.resource
        info = tracer.instrumentation_info
        # One object for every span: the OTLP encoder keeps its encoding by identity.
        self._scope = InstrumentationScope(info.name, info.version, info.schema_url)
        self._limits = limits
        # Limits cut nothing of a span of the gateway's (a score of short
        # attributes) unless set that low or a value length is set at all.
        self._bounded = limits.max_span_attribute_length is not None or (
            limits.max_span_attributes is not None and limits.max_span_attributes < 64
        )
        self._samples_every_root = _samples_every_root(self._sampler)

    def start_span(
        self,
        name: str,
        parent: otel_context.Context,
        kind: SpanKind,
        attributes: dict[str, str],
        start_ns: int | None = None,
    ) -> trace.Span:
        """A span, sampled as the SDK's Tracer.start_span(name, parent, kind,
        attributes, start_time=start_ns) would: a LeanSpan when recorded,
        else a NonRecordingSpan with its ids (logs carry them, children are
        not made)."""
        # An empty parent (a call that names no trace, the usual case) holds
        # no span: no lookup needed to know there is no valid parent.
        parent_context = trace.get_current_span(parent).get_span_context() if parent else None
        ids = self._ids
        if parent_context is not None and parent_context.is_valid:
            trace_id = parent_context.trace_id
            random_trace_id = parent_context.trace_flags.random_trace_id
            parent_or_none: SpanContext | None = parent_context
        else:
            trace_id = ids.generate_trace_id()
            random_trace_id = ids.is_trace_id_random()
            parent_or_none = None
        if parent_or_none is None and self._samples_every_root:
            # What the sampler would answer, without asking it: a call of its
            # own (no trace named) is sampled, with its attributes, no state.
            decision, state = Decision.RECORD_AND_SAMPLE, None
            recorded: dict[str, types.AnyValue] = dict(attributes)
        else:
            result = self._sampler.should_sample(parent, trace_id, name, kind, attributes, ())
            decision, state = result.decision, result.trace_state
            recorded = dict(result.attributes or {})
        if decision is Decision.RECORD_AND_SAMPLE:
            flags = _SAMPLED_RANDOM if random_trace_id else _SAMPLED
        else:
            flags = _NOT_SAMPLED_RANDOM if random_trace_id else _NOT_SAMPLED
        context = SpanContext(
            trace_id, ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=state
        )
        if decision is Decision.DROP:
            return NonRecordingSpan(context)
        return LeanSpan(self, name, context, parent_or_none, kind, recorded, start_ns)

    def finish(self, span: LeanSpan) -> None:
        attributes: types.Attributes = span.attributes
        if self._bounded:
            limits = self._limits
            attributes = BoundedAttributes(
                limits.max_span_attributes,
                span.attributes,
                immutable=True,
                max_value_len=limits.max_span_attribute_length,
            )
        events: Sequence[Event] = span.events
        max_events = self._limits.max_events
        if max_events is not None and len(events) > max_events:
            events = events[:max_events]
        self._processor.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=self._resource,
                attributes=attributes,
                events=events,
                kind=span.kind,
                status=span.status,
                start_time=span.start_ns,
                end_time=span.end_ns,
                instrumentation_scope=self._scope,
            )
        )


def _samples_every_root(sampler: Sampler) -> bool:
    """Whether the sampler samples every span without a parent, with its
    attributes as given and no trace state: always_on, and
    parentbased_always_on (the default) whose root sampler is always_on.
    Its description says so (a ParentBased's parts are not public)."""
    if sampler is sampling.ALWAYS_ON:
        return True
    if not isinstance(sampler, sampling.ParentBased):
        return False
    description: str = sampler.get_description()  # type: ignore[no-untyped-call]
    return description.startswith(f"ParentBased{{root:{sampling.ALWAYS_ON.get_description()},")


class LeanSpan(trace.Span):
    """A recorded span, current while its call runs: the SDK's Span's
    interface over a dict of attributes, ended once."""

    __slots__ = (
        "_tracer",
        "attributes",
        "context",
        "end_ns",
        "events",
        "kind",
        "name",
        "parent",
        "start_ns",
        "status",
    )

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, types.AnyValue],
        start_ns: int | None = None,
    ) -> None:
        self._tracer = tracer
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.events: list[Event] = []
        self.status = _UNSET
        self.start_ns = time_ns() if start_ns is None else start_ns
        self.end_ns: int | None = None

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_ns is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self.end_ns is None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self.end_ns is None:
            self.attributes.update(attributes)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_ns is None:
            when = time_ns() if timestamp is None else timestamp
            self.events.append(Event(name, attributes, when))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Links are not recorded: a server span has none (as the SDK's
        Span, this one takes them only at its start)."""

    def update_name(self, name: str) -> None:
        if self.end_ns is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK's: OK is final, UNSET changes nothing.
        if self.end_ns is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        event: dict[str, types.AnyValue] = {
            "exception.type": (
                f"{module}.{kind.__qualname__}"
                if module and module != "builtins"
                else kind.__qualname__
            ),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns is not None:
            return
        self.end_ns = time_ns() if end_time is None else end_time
        self._tracer.finish(self)

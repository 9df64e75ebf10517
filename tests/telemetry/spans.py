"""Reading the spans a gateway ends, as the SDK's in-memory exporter keeps them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

Spans = Sequence[ReadableSpan]


class SpanRecorder(InMemorySpanExporter):
    """InMemorySpanExporter that can be waited on: a call's span ends as the
    call does, which for a signed-URL GET is after its client has the body."""

    def __init__(self) -> None:
        super().__init__()
        self._ended = threading.Condition()

    @property
    def processor(self) -> SimpleSpanProcessor:
        return SimpleSpanProcessor(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        with self._ended:
            self._ended.notify_all()
        return result

    def wait_for(self, ready: Callable[[Spans], bool], timeout: float = 30) -> Spans:
        """The spans ended so far, once ready(spans) (or after timeout)."""
        with self._ended:
            self._ended.wait_for(lambda: ready(self.get_finished_spans()), timeout)
        return self.get_finished_spans()


def server_spans(spans: Spans, name: str) -> list[ReadableSpan]:
    """The server spans named name ("storagegw.v1.StorageService/Put"), in end order."""
    return [s for s in spans if s.kind is SpanKind.SERVER and s.name == name]


def children(spans: Spans, parent: ReadableSpan) -> list[ReadableSpan]:
    """The spans whose parent is parent."""
    ids = parent.get_span_context()
    return [
        s
        for s in spans
        if s.parent is not None
        and s.parent.span_id == ids.span_id
        and s.parent.trace_id == ids.trace_id
    ]


def count(name: str, wanted: int) -> Callable[[Spans], bool]:
    """ready(): wanted server spans named name have ended."""
    return lambda spans: len(server_spans(spans, name)) >= wanted

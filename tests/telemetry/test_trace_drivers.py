"""Backend calls as child spans on every driver: the same operations give the
same spans whatever the store, so a slow call shows where its time went. (A
driver whose calls stay on the machine makes them only for slow calls: here
every call counts as slow, GATEWAY_TRACE_SLOW_CALL_MS=0.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from storagegw import Client, NotFound
from tests.conftest import BACKENDS, RunningGateway, run_gateway
from tests.drivers import backend_env
from tests.telemetry.spans import SpanRecorder, Spans, children, count, server_spans
from tests.telemetry.test_traces import GET, PUT, SERVICE

DATA = bytes(range(251)) * 12000  # 3,012,000 bytes: several chunks


def backend_calls(spans: Spans, parent: ReadableSpan) -> list[str]:
    """The names of parent's backend-call children (not its fsyncs or requests)."""
    return [s.name for s in children(spans, parent) if s.name.startswith("backend ")]


@pytest.fixture(params=BACKENDS)
def traced_driver(
    request: pytest.FixtureRequest, receiver, tmp_path: Path
) -> Iterator[tuple[RunningGateway, SpanRecorder]]:
    url, _ = receiver
    env = {
        **backend_env(request, request.param),
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
        "GATEWAY_TRACE_SLOW_CALL_MS": "0",
    }
    with run_gateway(env, tmp_path) as running:
        recorder = SpanRecorder()
        running.gateway.telemetry.tracer_provider.add_span_processor(recorder.processor)
        yield running, recorder


def test_each_backend_call_is_a_child_of_its_calls_span(traced_driver):
    running, recorder = traced_driver
    kind = running.backend().kind
    with Client(running.target) as client:
        client.put_bytes("t/one.bin", DATA)
        assert client.get_bytes("t/one.bin") == DATA
        with pytest.raises(NotFound):
            client.head("t/missing.bin")
    spans = recorder.wait_for(count(f"{SERVICE}/Head", 1))
    (put,) = server_spans(spans, PUT)
    (get,) = server_spans(spans, GET)
    (head,) = server_spans(spans, f"{SERVICE}/Head")
    assert backend_calls(spans, put) == ["backend open_write", "backend commit"]
    assert put.attributes["storagegw.bytes.received"] == len(DATA)
    assert put.attributes["storagegw.object.size"] == len(DATA)
    assert put.attributes["storagegw.chunks"] > 1
    assert backend_calls(spans, get) == ["backend open_read"]
    assert get.attributes["storagegw.bytes.sent"] == len(DATA)
    assert get.attributes["storagegw.chunks"] > 1
    (missing,) = [s for s in children(spans, head) if s.name.startswith("backend ")]
    assert missing.name == "backend head"
    assert missing.attributes["storagegw.backend"] == kind
    assert missing.attributes["storagegw.outcome"] == "OBJECT_NOT_FOUND"
    assert missing.status.status_code is StatusCode.ERROR
    assert head.attributes["storagegw.reason"] == "OBJECT_NOT_FOUND"

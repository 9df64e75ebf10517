"""The caller's trace continued through the real clients and the CLI, the
trace ids in the JSON log lines, and the spans exported over OTLP."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, Tracer

from gateway import logs
from gateway.access import audit
from storagegw import AsyncClient, Client, cli
from tests.conftest import run_gateway
from tests.telemetry.spans import SpanRecorder, count, server_spans
from tests.telemetry.test_traces import PUT, SERVICE

HEAD = f"{SERVICE}/Head"


@pytest.fixture
def caller() -> Iterator[tuple[Tracer, SpanRecorder]]:
    """The calling application's tracer (an SDK provider of its own) and its spans."""
    recorder = SpanRecorder()
    provider = TracerProvider()
    provider.add_span_processor(recorder.processor)
    yield provider.get_tracer("caller"), recorder
    provider.shutdown()


def joins(server: ReadableSpan, client: ReadableSpan) -> bool:
    """server is a child of client, in its trace."""
    return (
        server.context.trace_id == client.context.trace_id
        and server.parent is not None
        and server.parent.span_id == client.context.span_id
    )


def test_a_client_span_and_the_gateways_server_spans_share_one_trace(traced, caller):
    running, gateway_spans = traced()
    tracer, caller_spans = caller
    with Client(running.target) as client:
        with tracer.start_as_current_span("upload", kind=SpanKind.CLIENT):
            client.put_bytes("p.bin", b"p" * 100)
            assert client.get_bytes("p.bin") == b"p" * 100
        client.put_bytes("untraced.bin", b"u")  # outside the caller's span
    (upload,) = caller_spans.get_finished_spans()
    spans = gateway_spans.wait_for(count(PUT, 2))
    put, untraced = server_spans(spans, PUT)
    (get,) = server_spans(spans, f"{SERVICE}/Get")
    assert joins(put, upload)
    assert joins(get, upload)
    # With no span current, the client sends no trace: the gateway starts one.
    assert untraced.parent is None
    assert untraced.context.trace_id != upload.context.trace_id


def test_the_async_client_carries_the_trace_too(traced, caller):
    running, gateway_spans = traced()
    tracer, caller_spans = caller

    async def main() -> None:
        async with AsyncClient(running.target) as client:
            with tracer.start_as_current_span("async upload"):
                await client.put_bytes("a.bin", b"a" * 100)
                assert await client.get_bytes("a.bin") == b"a" * 100

    asyncio.run(main())
    (upload,) = caller_spans.get_finished_spans()
    spans = gateway_spans.wait_for(count(f"{SERVICE}/Get", 1))
    (put,) = server_spans(spans, PUT)
    (get,) = server_spans(spans, f"{SERVICE}/Get")
    assert joins(put, upload)
    assert joins(get, upload)


def test_the_cli_joins_the_current_span_or_its_traceparent(traced, caller, monkeypatch):
    running, gateway_spans = traced()
    tracer, caller_spans = caller
    with tracer.start_as_current_span("script"):
        assert cli.main(["--target", running.target, "stat", "missing"]) == 3
    (script,) = caller_spans.get_finished_spans()
    monkeypatch.setenv("TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert cli.main(["--target", running.target, "stat", "missing"]) == 3
    in_span, from_env = server_spans(gateway_spans.wait_for(count(HEAD, 2)), HEAD)
    assert joins(in_span, script)
    assert in_span.attributes["storagegw.reason"] == "OBJECT_NOT_FOUND"
    assert from_env.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert from_env.parent is not None
    assert from_env.parent.span_id == 0xB7AD6B7169203331


class _JsonLines(logging.Handler):
    """Formats each record as it is emitted, as the gateway's JSON log does."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[_JsonLines]:
    handler = _JsonLines()
    loggers = [logging.getLogger(n) for n in ("storagegw.access", audit.LOGGER_NAME)]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def test_json_log_lines_carry_the_calls_trace_and_span_ids(traced, json_lines):
    running, gateway_spans = traced()
    with Client(running.target) as client:
        client.put_bytes("logged.bin", b"l" * 10)
    (put,) = server_spans(gateway_spans.wait_for(count(PUT, 1)), PUT)
    trace_id, span_id = f"{put.context.trace_id:032x}", f"{put.context.span_id:016x}"
    access = [line for line in json_lines.lines if line.get("rpc_method") == "Put"]
    audited = [line for line in json_lines.lines if line["logger"] == audit.LOGGER_NAME]
    assert len(access) == 1
    assert len(audited) == 1
    for line in (*access, *audited):
        assert line["trace_id"] == trace_id
        assert line["span_id"] == span_id


def test_spans_go_over_otlp_to_the_endpoint(receiver, tmp_path: Path):
    url, exports = receiver
    env = {
        "STORAGE_BACKEND": "memory",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "storagegw-test",
        # Every call of the memory driver a span, slow or not.
        "GATEWAY_TRACE_SLOW_CALL_MS": "0",
    }
    with run_gateway(env, tmp_path) as running, Client(running.target) as client:
        client.put_bytes("otlp.bin", b"o" * 10)
    # Stopping the gateway exports the spans not yet sent.
    names, services = [], set()
    for path, body in exports:
        assert path == "/v1/traces"
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
            services.add(attributes["service.name"])
            names += [span.name for scope in resource.scope_spans for span in scope.spans]
    assert services == {"storagegw-test"}
    assert PUT in names
    assert {"backend open_write", "backend commit"} <= set(names)

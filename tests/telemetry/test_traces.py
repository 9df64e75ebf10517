"""The gateway's spans, as an OpenTelemetry SDK exporter receives them: a
server span per call with what the call did, the backend calls as its
children, and the caller's trace continued."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from storagegw import Client, PreconditionFailed
from tests.telemetry.spans import children, count, server_spans

SERVICE = "storagegw.v1.StorageService"
PUT, GET = f"{SERVICE}/Put", f"{SERVICE}/Get"
SIGNED_GET = "GET /v1/b/{bucket}/o/{key}"
OBJECT = b"x" * 1000
UPLOADED = bytes(range(256)) * 12  # 3072 bytes


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_put_a_get_and_a_failed_put_each_have_a_span_with_backend_children(traced):
    running, recorder = traced()
    with Client(running.target) as client:
        client.put_bytes("a.bin", OBJECT)
        assert client.get_bytes("a.bin") == OBJECT
        with pytest.raises(PreconditionFailed):
            client.put_bytes("a.bin", b"y" * 500, if_none_match="*")
    spans = recorder.wait_for(count(PUT, 2))
    put, refused = server_spans(spans, PUT)
    (get,) = server_spans(spans, GET)

    assert put.kind is SpanKind.SERVER
    assert put.attributes["rpc.system"] == "grpc"
    assert put.attributes["rpc.service"] == SERVICE
    assert put.attributes["rpc.method"] == "Put"
    assert put.attributes["rpc.grpc.status_code"] == 0
    assert put.attributes["storagegw.bucket"] == "default"
    assert put.attributes["storagegw.action"] == "write"
    assert put.attributes["storagegw.bytes.received"] == len(OBJECT)
    assert put.attributes["storagegw.object.size"] == len(OBJECT)
    assert put.attributes["storagegw.chunks"] >= 1
    # Keys can be personal data: a hash of it, unless GATEWAY_TRACE_KEYS=1.
    assert put.attributes["storagegw.key.sha256"] == digest("a.bin")
    assert "storagegw.key" not in put.attributes
    assert "a.bin" not in {str(v) for s in spans for v in s.attributes.values()}
    assert put.status.status_code is StatusCode.UNSET
    backend = {s.name: s for s in children(spans, put)}
    assert set(backend) == {"backend open_write", "backend commit"}
    commit = backend["backend commit"]
    assert commit.kind is SpanKind.CLIENT
    assert commit.attributes["storagegw.backend"] == "memory"
    assert commit.attributes["storagegw.outcome"] == "ok"

    assert get.attributes["rpc.method"] == "Get"
    assert get.attributes["storagegw.bytes.sent"] == len(OBJECT)
    assert get.attributes["storagegw.object.size"] == len(OBJECT)
    assert get.attributes["storagegw.chunks"] >= 1
    assert [s.name for s in children(spans, get)] == ["backend open_read"]

    # The refused Put: its reason on the span and on the backend call that refused it.
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.attributes["storagegw.status"] == "FAILED_PRECONDITION"
    assert refused.attributes["rpc.grpc.status_code"] == 9
    assert refused.attributes["storagegw.reason"] == "PRECONDITION_FAILED"
    (failed,) = [s for s in children(spans, refused) if s.name == "backend commit"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["storagegw.outcome"] == "PRECONDITION_FAILED"
    # Three calls with no caller's trace: three traces.
    assert len({s.context.trace_id for s in (put, get, refused)}) == 3


def test_a_resumable_upload_names_its_upload_on_every_call(traced):
    running, recorder = traced()
    with Client(running.target) as client:
        session = client.start_upload("r.bin")
        client.resume_upload(session.upload_id, UPLOADED)
    spans = recorder.wait_for(count(PUT, 1))
    (start,) = server_spans(spans, f"{SERVICE}/StartUpload")
    (segment,) = server_spans(spans, PUT)
    queries = server_spans(spans, f"{SERVICE}/QueryUpload")
    # The id opens the upload: a hash of it, the same on each of its calls.
    upload = digest(session.upload_id)
    for span in (start, segment, *queries):
        assert span.attributes["storagegw.upload_id.sha256"] == upload
    assert session.upload_id not in {str(v) for s in spans for v in s.attributes.values()}
    assert segment.attributes["storagegw.bytes.received"] == len(UPLOADED)
    assert segment.attributes["storagegw.object.size"] == len(UPLOADED)
    assert [s.name for s in children(spans, start)] == ["backend start_upload"]
    assert "backend commit_upload" in {s.name for s in children(spans, segment)}


def test_a_signed_url_get_has_a_span_and_continues_the_callers_trace(traced):
    running, recorder = traced()
    with Client(running.target) as client:
        client.put_bytes("s.bin", OBJECT)
        url = client.sign_url("s.bin").url
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert httpx.get(url, headers={"traceparent": caller}).content == OBJECT
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403
    spans = recorder.wait_for(count(SIGNED_GET, 2))
    served, refused = server_spans(spans, SIGNED_GET)
    assert served.attributes["http.request.method"] == "GET"
    assert served.attributes["http.route"] == "/v1/b/{bucket}/o/{key}"
    assert served.attributes["http.response.status_code"] == 200
    assert served.attributes["storagegw.bytes.sent"] == len(OBJECT)
    assert served.attributes["storagegw.object.size"] == len(OBJECT)
    assert served.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert served.parent is not None
    assert served.parent.span_id == 0xB7AD6B7169203331
    assert [s.name for s in children(spans, served)] == ["backend open_read"]
    assert refused.attributes["http.response.status_code"] == 403
    assert refused.attributes["storagegw.reason"] == "PERMISSION_DENIED"
    assert refused.status.status_code is StatusCode.ERROR


def test_keys_are_recorded_when_the_setting_allows(traced):
    running, recorder = traced(GATEWAY_TRACE_KEYS="1")
    with Client(running.target) as client:
        client.put_bytes("named.bin", OBJECT)
    (put,) = server_spans(recorder.wait_for(count(PUT, 1)), PUT)
    assert put.attributes["storagegw.key"] == "named.bin"
    assert "storagegw.key.sha256" not in put.attributes


def test_a_sampler_that_samples_nothing_records_nothing(traced):
    running, recorder = traced(OTEL_TRACES_SAMPLER="always_off")
    with Client(running.target) as client:
        client.put_bytes("unsampled.bin", OBJECT)
        assert client.get_bytes("unsampled.bin") == OBJECT
    # A gRPC call's span ends before its answer is sent.
    assert recorder.get_finished_spans() == ()


def test_slow_checkpoints_are_spans_of_their_upload_call(traced):
    # Every checkpoint counts as slow here (by default: those over 10 ms).
    running, recorder = traced(GATEWAY_TRACE_SLOW_CALL_MS="0")
    data = b"c" * (600 * 1024)  # the memory driver checkpoints every 256 KiB
    with Client(running.target) as client:
        session = client.start_upload("slow.bin")
        client.resume_upload(session.upload_id, data)
    spans = recorder.wait_for(count(PUT, 1))
    (segment,) = server_spans(spans, PUT)
    checkpoints = [s for s in children(spans, segment) if s.name == "backend checkpoint"]
    assert len(checkpoints) >= 2
    for checkpoint in checkpoints:
        assert checkpoint.attributes["storagegw.outcome"] == "ok"
        assert checkpoint.start_time <= checkpoint.end_time

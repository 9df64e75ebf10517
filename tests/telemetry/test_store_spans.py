"""Beneath a backend call's span, the work the driver did for it: a client
span per HTTP request to a remote store (S3 on moto and Ceph RGW, GCS on
fake-gcs-server), and on the local disk the fsyncs that were slow. A driver
whose calls stay on the machine makes no span of a fast call at all."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from storagegw import Client, NotFound
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import backend_env
from tests.moto_server import MotoServer
from tests.telemetry.spans import SpanRecorder, Spans, children, count, server_spans
from tests.telemetry.test_traces import GET, PUT, SERVICE

HEAD = f"{SERVICE}/Head"
DATA = bytes(range(256)) * 16  # 4 KiB
KEY = "who/alice.bin"
# The API each remote driver speaks, as its request spans are named.
SERVICES = {"s3-moto": "S3", "s3-ceph": "S3", "gcs": "GCS"}

Start = Callable[..., tuple[RunningGateway, SpanRecorder]]


@pytest.fixture
def traced_on(request: pytest.FixtureRequest, receiver, tmp_path: Path) -> Iterator[Start]:
    """start(driver, **env): a gateway whose default bucket is on driver,
    tracing into an in-memory exporter."""
    url, _ = receiver
    managers = []

    def start(driver: str, **env: str) -> tuple[RunningGateway, SpanRecorder]:
        settings = {
            **backend_env(request, driver),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
            **env,
        }
        manager = run_gateway(settings, tmp_path)
        running = manager.__enter__()
        managers.append(manager)
        recorder = SpanRecorder()
        running.gateway.telemetry.tracer_provider.add_span_processor(recorder.processor)
        return running, recorder

    yield start
    for manager in reversed(managers):
        manager.__exit__(None, None, None)


def put_get_and_miss(running: RunningGateway, recorder: SpanRecorder) -> Spans:
    with Client(running.target) as client:
        client.put_bytes(KEY, DATA)
        assert client.get_bytes(KEY) == DATA
        with pytest.raises(NotFound):
            client.head("who/nobody.bin")
    return recorder.wait_for(count(HEAD, 1))


def only(spans: Spans, parent: ReadableSpan, name: str) -> ReadableSpan:
    (span,) = [s for s in children(spans, parent) if s.name == name]
    return span


def attribute_texts(spans: Spans) -> set[str]:
    return {str(v) for s in spans for v in s.attributes.values()}


@pytest.mark.parametrize("driver", ["memory", "local"])
def test_a_fast_call_on_a_driver_whose_calls_stay_local_is_its_server_span_alone(
    traced_on: Start, driver: str
):
    # Nothing counts as slow: a minute.
    running, recorder = traced_on(driver, GATEWAY_TRACE_SLOW_CALL_MS="60000")
    assert running.backend().capabilities.calls_stay_local
    spans = put_get_and_miss(running, recorder)
    assert sorted(s.name for s in spans) == sorted([PUT, GET, HEAD])
    (put,) = server_spans(spans, PUT)
    # The call's own record is whole without its backend spans.
    assert put.attributes["storagegw.object.size"] == len(DATA)
    (head,) = server_spans(spans, HEAD)
    assert head.attributes["storagegw.reason"] == "OBJECT_NOT_FOUND"


def test_a_slow_local_fsync_is_a_span_of_its_call_without_its_path(traced_on: Start):
    # Every fsync (and every call) counts as slow.
    running, recorder = traced_on("local", GATEWAY_TRACE_SLOW_CALL_MS="0")
    spans = put_get_and_miss(running, recorder)
    (put,) = server_spans(spans, PUT)
    fsyncs = [s for s in children(spans, put) if s.name == "local fsync"]
    # The object file's, then its directory's.
    assert len(fsyncs) >= 2
    for fsync in fsyncs:
        assert fsync.attributes["storagegw.backend"] == "local"
        assert fsync.attributes["storagegw.bucket"] == "default"
        assert "file.path" not in fsync.attributes
        assert fsync.start_time <= fsync.end_time
    assert {"backend open_write", "backend commit"} <= {s.name for s in children(spans, put)}
    (get,) = server_spans(spans, GET)
    assert "local fsync" not in {s.name for s in children(spans, get)}
    assert not any("alice" in text for text in attribute_texts(spans))


def test_a_local_fsyncs_path_is_recorded_when_keys_may_be(traced_on: Start):
    running, recorder = traced_on("local", GATEWAY_TRACE_SLOW_CALL_MS="0", GATEWAY_TRACE_KEYS="1")
    spans = put_get_and_miss(running, recorder)
    (put,) = server_spans(spans, PUT)
    paths = [s.attributes["file.path"] for s in children(spans, put) if s.name == "local fsync"]
    root = str(running.data_dir)
    assert paths
    assert all(str(path).startswith(root) for path in paths)
    # The key's directory, made durable after the rename.
    assert any(str(path).endswith("/objects/who") for path in paths)


@pytest.mark.parametrize("driver", list(SERVICES))
def test_each_request_to_a_remote_store_is_a_span_of_its_backend_call(
    traced_on: Start, driver: str
):
    running, recorder = traced_on(driver)
    assert not running.backend().capabilities.calls_stay_local
    spans = put_get_and_miss(running, recorder)
    service = SERVICES[driver]
    (put,) = server_spans(spans, PUT)
    (get,) = server_spans(spans, GET)
    (head,) = server_spans(spans, HEAD)
    requests = [s for s in spans if s.name.startswith(f"{service} ")]
    assert requests
    for request in requests:
        assert request.kind is SpanKind.CLIENT
        assert request.attributes["server.address"] in ("127.0.0.1", "localhost")
        assert isinstance(request.attributes["server.port"], int)
        assert request.attributes["storagegw.backend"] == running.backend().kind
        # The path names the key, the query string may hold a signature: neither.
        assert "url.path" not in request.attributes
    assert not any("?" in text or "alice" in text for text in attribute_texts(spans))

    # The Put's object goes up in its commit, a Get's comes down in open_read:
    # each a request beneath that call's span, answered 2xx.
    commit = only(spans, put, "backend commit")
    open_read = only(spans, get, "backend open_read")
    for call in (commit, open_read):
        sent = children(spans, call)
        assert sent
        assert all(s.name.startswith(f"{service} ") for s in sent)
        assert any(200 <= s.attributes["http.response.status_code"] < 300 for s in sent)
    uploads = [s for s in children(spans, commit) if s.attributes["http.request.method"] in
               ("PUT", "POST")]  # fmt: skip
    assert uploads
    assert uploads[-1].status.status_code is StatusCode.UNSET

    # The missing object: a 404 from the store, an error on the request's span.
    missing = only(spans, head, "backend head")
    answers = [s.attributes.get("http.response.status_code") for s in children(spans, missing)]
    assert 404 in answers
    (not_found,) = [s for s in children(spans, missing) if s.attributes.get(
        "http.response.status_code") == 404]  # fmt: skip
    assert not_found.status.status_code is StatusCode.ERROR
    assert not_found.attributes["error.type"] == "404"
    assert not_found.attributes["http.request.method"] in ("GET", "HEAD")


@pytest.mark.parametrize("driver", ["s3-moto", "s3-ceph"])
def test_an_s3_request_span_names_its_operation(traced_on: Start, driver: str):
    running, recorder = traced_on(driver, GATEWAY_TRACE_KEYS="1")
    spans = put_get_and_miss(running, recorder)
    (put,) = server_spans(spans, PUT)
    put_object = only(spans, only(spans, put, "backend commit"), "S3 PutObject")
    assert put_object.attributes["rpc.service"] == "S3"
    assert put_object.attributes["rpc.method"] == "PutObject"
    assert put_object.attributes["http.request.method"] == "PUT"
    assert put_object.attributes["http.response.status_code"] == 200
    assert put_object.attributes["storagegw.store.bucket"] == "sgw-conformance"
    # Keys may be recorded: the path, still without a query string.
    path = str(put_object.attributes["url.path"])
    assert path.endswith(f"/{KEY}")
    assert "?" not in path
    (head,) = server_spans(spans, HEAD)
    head_object = only(spans, only(spans, head, "backend head"), "S3 HeadObject")
    assert head_object.attributes["http.response.status_code"] == 404


@pytest.mark.parametrize("driver", list(SERVICES))
def test_a_request_path_is_recorded_without_its_query_when_keys_may_be(
    traced_on: Start, driver: str
):
    running, recorder = traced_on(driver, GATEWAY_TRACE_KEYS="1")
    with Client(running.target) as client:
        client.put_bytes(KEY, DATA)
        # A listing's request carries its prefix and page in the query string.
        assert [o.key for o in client.list("who/")] == [KEY]
    spans = recorder.wait_for(count(f"{SERVICE}/List", 1))
    (listed,) = server_spans(spans, f"{SERVICE}/List")
    listings = children(spans, only(spans, listed, "backend list"))
    assert listings
    for request in listings:
        assert request.attributes["http.request.method"] == "GET"
        assert request.attributes["http.response.status_code"] == 200
    requests = [s for s in spans if s.name.startswith(f"{SERVICES[driver]} ")]
    paths = [str(s.attributes["url.path"]) for s in requests]
    assert len(paths) == len(requests)
    assert all(path.startswith("/") for path in paths)
    assert not any("?" in path or "prefix" in path or "uploadType" in path for path in paths)
    assert not any("?" in text for text in attribute_texts(spans))


class _FlakyFront(BaseHTTPRequestHandler):
    """Forwards to an S3 server, but first answers the next `refuse` PUTs
    itself with S3's 503 SlowDown, which botocore retries."""

    protocol_version = "HTTP/1.1"
    upstream: str
    refuse: list[int]  # [how many PUTs still to refuse]

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and self.refuse[0] > 0:
            self.refuse[0] -= 1
            self._answer(503, [("Content-Type", "application/xml")], SLOW_DOWN)
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body, dict(self.headers))
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        skip = {"content-length", "transfer-encoding", "connection"}
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
        self._answer(response.status, headers, data, length=response.getheader("Content-Length"))

    def _answer(
        self, status: int, headers: list[tuple[str, str]], data: bytes, length: str | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@pytest.fixture
def flaky_s3(moto_server: MotoServer) -> Iterator[tuple[str, list[int]]]:
    """(the endpoint of _FlakyFront before moto, its refusal count)."""
    refuse = [0]
    upstream = moto_server.endpoint.removeprefix("http://")
    handler = type("Front", (_FlakyFront,), {"upstream": upstream, "refuse": refuse})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", refuse
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_each_attempt_of_a_retried_s3_request_is_its_own_span(
    traced_on: Start, flaky_s3: tuple[str, list[int]]
):
    front, refuse = flaky_s3
    running, recorder = traced_on("s3-moto", STORAGE_S3_ENDPOINT=front)
    refuse[0] = 1  # the Put's PutObject
    with Client(running.target) as client:
        client.put_bytes(KEY, DATA)
        assert client.get_bytes(KEY) == DATA
    assert refuse == [0]
    spans = recorder.wait_for(count(GET, 1))
    (put,) = server_spans(spans, PUT)
    refused, stored = [
        s for s in children(spans, only(spans, put, "backend commit")) if s.name == "S3 PutObject"
    ]
    assert refused.attributes["http.response.status_code"] == 503
    assert refused.attributes["error.type"] == "503"
    assert refused.status.status_code is StatusCode.ERROR
    assert "http.request.resend_count" not in refused.attributes
    assert stored.attributes["http.response.status_code"] == 200
    assert stored.attributes["http.request.resend_count"] == 1
    assert stored.status.status_code is StatusCode.UNSET
    assert refused.end_time <= stored.start_time

"""The gateway's metrics as a scraper reads them from GATEWAY_METRICS_LISTEN:
a Put, a Get, a failed Put, a resumable upload and signed-URL GETs, with the
exact byte counts they moved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from gateway import cleanup
from storagegw import Client, PreconditionFailed
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import put_messages
from tests.telemetry.scrape import scrape, scrape_until, total, value

OBJECT = b"x" * 1000
REFUSED = b"y" * 500
UPLOADED = bytes(range(256)) * 12  # 3072 bytes
BUCKET = {"bucket": "default", "backend": "memory"}


@pytest.fixture
def metered(gateway_factory):
    return gateway_factory(STORAGE_BACKEND="memory", GATEWAY_METRICS_LISTEN="127.0.0.1:0")


def test_transfers_show_in_the_metrics_with_their_exact_bytes(metered):
    port = metered.gateway.telemetry.metrics_port
    with Client(metered.target) as client:
        client.put_bytes("a.bin", OBJECT)
        assert client.get_bytes("a.bin") == OBJECT
        with pytest.raises(PreconditionFailed):
            client.put_bytes("a.bin", REFUSED, if_none_match="*")
        session = client.start_upload("r.bin")
        client.resume_upload(session.upload_id, UPLOADED)
        url = client.sign_url("a.bin").url
    assert httpx.get(url).content == OBJECT
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403

    samples = scrape_until(
        port,
        lambda s: (
            total(s, "storagegw_signed_url_requests_total", method="GET") == 2
            and value(s, "storagegw_rpc_duration_seconds_count", method="SignUrl", status="OK") == 1
        ),
    )
    transfer = "storagegw_transfer_bytes_total"
    # Received: the Put, the refused Put's bytes (it failed at commit), the upload.
    received = len(OBJECT) + len(REFUSED) + len(UPLOADED)
    assert value(samples, transfer, **BUCKET, direction="received") == received
    # Sent: the gRPC Get and the signed GET.
    assert value(samples, transfer, **BUCKET, direction="sent") == 2 * len(OBJECT)
    # The storage cost view: what was stored (the refused Put was not), what left the storage.
    stored = len(OBJECT) + len(UPLOADED)
    assert value(samples, "storage_bytes_total", backend="memory", tenant="default") == stored
    assert value(samples, "storage_egress_bytes_total", backend="memory") == 2 * len(OBJECT)
    # Class A: two Puts' writes, StartUpload and the upload's stream; class B: the
    # two reads and the client's QueryUpload before it resumes.
    operations = "storagegw_storage_operations_total"
    assert value(samples, operations, **BUCKET, **{"class": "A"}) == 4
    assert value(samples, operations, **BUCKET, **{"class": "B"}) == 3

    duration = "storagegw_rpc_duration_seconds_count"
    assert value(samples, duration, method="Put", status="OK") == 2
    assert value(samples, duration, method="Get", status="OK") == 1
    assert value(samples, duration, method="Put", status="FAILED_PRECONDITION") == 1
    reason = {"reason": "PRECONDITION_FAILED"}
    assert (
        value(
            samples,
            "storagegw_rpc_errors_total",
            method="Put",
            status="FAILED_PRECONDITION",
            **reason,
        )
        == 1
    )
    assert (
        value(samples, "storagegw_backend_errors_total", **BUCKET, operation="commit", **reason)
        == 1
    )
    backend = "storagegw_backend_duration_seconds_count"
    assert value(samples, backend, **BUCKET, operation="commit", outcome="ok") == 1
    assert value(samples, backend, **BUCKET, operation="commit", outcome="PRECONDITION_FAILED") == 1

    assert value(samples, "storagegw_resumable_uploads_persisted_bytes_total", **BUCKET) == len(
        UPLOADED
    )
    assert value(samples, "storagegw_resumable_uploads_open", **BUCKET) == 0
    finished = "storagegw_resumable_uploads_finished_total"
    assert value(samples, finished, **BUCKET, outcome="completed") == 1

    signed = "storagegw_signed_url_requests_total"
    assert value(samples, signed, method="GET", outcome="ok") == 1
    assert value(samples, signed, method="GET", outcome="PERMISSION_DENIED") == 1
    route = {"method": "GET", "route": "/v1/b/{bucket}/o/{key}"}
    assert value(samples, "storagegw_http_duration_seconds_count", **route, status="200") == 1
    assert value(samples, "storagegw_http_duration_seconds_count", **route, status="403") == 1
    # Authentication is off: every gRPC call is anonymous (proof none), and counted.
    calls = total(samples, "storagegw_rpc_duration_seconds_count")
    assert value(samples, "storagegw_authentications_total", outcome="ok", proof="none") == calls


def test_stream_gauges_and_an_aborted_upload(metered):
    port = metered.gateway.telemetry.metrics_port
    with Client(metered.target) as client:
        session = client.start_upload("abandoned.bin")
        opened = scrape_until(
            port, lambda s: value(s, "storagegw_resumable_uploads_open", **BUCKET) == 1
        )
        assert value(opened, "storagegw_resumable_uploads_open", **BUCKET) == 1
        assert client.abort_upload(session.upload_id)
    samples = scrape_until(
        port, lambda s: value(s, "storagegw_resumable_uploads_open", **BUCKET) == 0
    )
    finished = "storagegw_resumable_uploads_finished_total"
    assert value(samples, finished, **BUCKET, outcome="aborted") == 1
    # Nothing in flight now: the limits' gauges read zero.
    assert value(samples, "storagegw_streams_active") == 0
    assert value(samples, "storagegw_streams_buffered_bytes") == 0


def test_cleanup_sweeps_are_counted(metered):
    port = metered.gateway.telemetry.metrics_port
    sweeps = "storagegw_cleanup_sweeps_total"
    # The gateway's first sweep, as it starts (the next is an hour away).
    before = scrape_until(port, lambda s: value(s, sweeps, **BUCKET, outcome="ok") == 1)
    assert value(before, sweeps, **BUCKET, outcome="ok") == 1
    with Client(metered.target) as client:
        client.start_upload("stale.bin")
    # The gateway's sweep, for uploads older than 0 s: every one.
    assert metered.run(cleanup.abort_stale_uploads(metered.gateway.buckets, 0)) == {"default": 1}
    samples = scrape(port)
    assert value(samples, sweeps, **BUCKET, outcome="ok") == 2
    assert value(samples, "storagegw_cleanup_aborted_uploads_total", **BUCKET) == 1


def test_without_the_setting_nothing_is_wrapped_or_served(memory_gateway):
    gateway = memory_gateway.gateway
    assert gateway.telemetry is None
    assert type(memory_gateway.backend()).__module__.startswith("gateway.backends.memory")


def test_a_stream_in_flight_shows_in_the_streams_gauge(metered):
    port = metered.gateway.telemetry.metrics_port
    data = b"g" * 5000
    release = threading.Event()

    def messages() -> Iterator[pb.PutRequest]:
        *first, last = put_messages("held.bin", data)
        yield from first
        release.wait(30)  # the stream stays open, its bytes received, until released
        yield last

    with grpc.insecure_channel(metered.target) as channel, ThreadPoolExecutor(1) as pool:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put = pool.submit(stub.Put, messages(), timeout=60)
        try:
            held = scrape_until(port, lambda s: value(s, "storagegw_streams_active") == 1)
            assert value(held, "storagegw_streams_active") == 1
        finally:
            release.set()
        assert put.result().object.size == len(data)
    done = scrape_until(port, lambda s: value(s, "storagegw_streams_active") == 0)
    assert value(done, "storagegw_streams_active") == 0
    assert value(done, "storage_bytes_total", backend="memory", tenant="default") == len(data)


def test_a_signed_put_is_received_and_stored(metered):
    port = metered.gateway.telemetry.metrics_port
    body = b"p" * 777
    with Client(metered.target) as client:
        url = client.sign_url("put.bin", method="PUT").url
    assert httpx.put(url, content=body).status_code == 200
    samples = scrape_until(
        port, lambda s: value(s, "storagegw_signed_url_requests_total", method="PUT", outcome="ok")
    )
    assert value(samples, "storagegw_signed_url_requests_total", method="PUT", outcome="ok") == 1
    transfer = "storagegw_transfer_bytes_total"
    assert value(samples, transfer, **BUCKET, direction="received") == len(body)
    assert value(samples, "storage_bytes_total", backend="memory", tenant="default") == len(body)
    route = {"method": "PUT", "route": "/v1/b/{bucket}/o/{key}", "status": "200"}
    assert value(samples, "storagegw_http_duration_seconds_count", **route) == 1

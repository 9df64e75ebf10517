"""A small Get with telemetry on: the local driver reads a small object
whole when it opens it, and the gateway answers with that one message,
metered as one chunk of a streamed Get would be (bytes sent, egress, the
span's chunk count) but with no backend read waited for."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import grpc
import pytest

from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import get, put
from tests.telemetry.scrape import Samples, scrape_until, value
from tests.telemetry.spans import count, server_spans

GET = "storagegw.v1.StorageService/Get"
CHUNK = 32 * 1024  # GATEWAY_CHUNK_SIZE, and so the largest Get answered from what is held
SMALL = os.urandom(4096)
# Over the small-Get size, yet within what the local driver reads as it opens
# an object (256 KiB): its reader holds it, and the Get streams it all the same.
STREAMED = os.urandom(3 * CHUNK + 1)
STREAMED_CHUNKS = 4
LOCAL = {"bucket": "default", "backend": "local"}
SETTINGS = {
    "STORAGE_BACKEND": "local",
    "GATEWAY_METRICS_LISTEN": "127.0.0.1:0",
    "GATEWAY_CHUNK_SIZE": str(CHUNK),
}


@pytest.fixture
def stub_of() -> Iterator[Callable[[str], storage_pb2_grpc.StorageServiceStub]]:
    """Stubs on channels to the given targets, closed after the test."""
    channels: list[grpc.Channel] = []

    def open_stub(target: str) -> storage_pb2_grpc.StorageServiceStub:
        channels.append(grpc.insecure_channel(target))
        return storage_pb2_grpc.StorageServiceStub(channels[-1])

    yield open_stub
    for channel in channels:
        channel.close()


def gets_done(port: int, wanted: int) -> Samples:
    """The samples once wanted Gets have ended (each records its metrics by then)."""
    return scrape_until(port, lambda s: gets(s) == wanted)


def gets(samples: Samples) -> float | None:
    return value(samples, "storagegw_rpc_duration_seconds_count", method="Get", status="OK")


def sent(samples: Samples) -> float | None:
    return value(samples, "storagegw_transfer_bytes_total", **LOCAL, direction="sent")


def egress(samples: Samples) -> float | None:
    return value(samples, "storage_egress_bytes_total", backend="local")


def reads_waited(samples: Samples) -> float:
    """The backend read chunks timed: a chunk the Get waited on the driver for."""
    duration = "storagegw_backend_duration_seconds_count"
    return value(samples, duration, **LOCAL, operation="read", outcome="ok") or 0


def small_then_streamed_get(stub: storage_pb2_grpc.StorageServiceStub, port: int) -> None:
    """Get SMALL, then STREAMED, checking the metrics after each."""
    put(stub, "small.bin", SMALL)
    put(stub, "streamed.bin", STREAMED)

    responses, body = get(stub, "small.bin")
    assert body == SMALL
    assert len(responses) == 1
    samples = gets_done(port, 1)
    assert gets(samples) == 1
    assert sent(samples) == len(SMALL)
    assert egress(samples) == len(SMALL)
    # Served from what open_read read (the fast path): no read chunk waited for.
    assert reads_waited(samples) == 0
    opened = "storagegw_backend_duration_seconds_count"
    assert value(samples, opened, **LOCAL, operation="open_read", outcome="ok") == 1

    responses, body = get(stub, "streamed.bin")
    assert body == STREAMED
    assert len(responses) == STREAMED_CHUNKS
    samples = gets_done(port, 2)
    assert gets(samples) == 2
    # Held by the driver's reader too, but streamed: counted once, chunk by chunk.
    assert sent(samples) == len(SMALL) + len(STREAMED)
    assert egress(samples) == len(SMALL) + len(STREAMED)
    assert reads_waited(samples) == STREAMED_CHUNKS


def test_a_small_get_takes_the_one_message_path_and_counts_its_bytes(gateway_factory, stub_of):
    running = gateway_factory(**SETTINGS)
    small_then_streamed_get(stub_of(running.target), running.gateway.telemetry.metrics_port)


def test_a_small_get_span_counts_its_one_chunk(traced, stub_of):
    running, recorder = traced(**SETTINGS)
    small_then_streamed_get(stub_of(running.target), running.gateway.telemetry.metrics_port)
    small, streamed = server_spans(recorder.wait_for(count(GET, 2)), GET)
    assert small.attributes["storagegw.bytes.sent"] == len(SMALL)
    assert small.attributes["storagegw.chunks"] == 1
    assert streamed.attributes["storagegw.bytes.sent"] == len(STREAMED)
    assert streamed.attributes["storagegw.chunks"] == STREAMED_CHUNKS

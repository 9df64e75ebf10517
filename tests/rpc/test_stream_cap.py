"""Stream limits: the gateway-wide cap on concurrent streams and the per-connection one.

Hundreds of Put streams that go silent hold the cap over real connections; each
stream past it must end at once with a status that says why and when to retry,
signed-URL transfers count against the same cap, and no temp file or object may be
left behind."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path

import grpc
import httpx
import pytest

from storagegw import Client, RetryPolicy
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.log_records import AccessLog
from tests.rpc.idle_streams import (
    IDLE_CHUNK,
    OWN_CONNECTION,
    PUT,
    error_details,
    idle_put,
    put_outcome,
    stored_objects,
    temp_files,
    wait_for,
)
from tests.rpc_calls import put_messages


def _refused_outcome(
    future: grpc.Future,
) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    error = future.exception(timeout=60)
    assert isinstance(error, grpc.RpcError), "the Put was not refused"
    return (error.code(), *error_details(error))  # type: ignore[attr-defined]


def test_streams_over_the_cap_are_refused_at_once_with_a_retry_hint(gateway_factory):
    # The idle timeout stays long: only the cap ends streams here.
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_MAX_STREAMS="20")

    async def fill_the_cap_then_try_more():
        channels = [
            grpc.aio.insecure_channel(running.target, options=OWN_CONNECTION) for _ in range(3)
        ]
        try:
            admitted = [idle_put(channels[i % 3], f"idle/{i}") for i in range(20)]
            # Those 20 hold the cap (each has its temp file); 280 more are refused.
            await asyncio.to_thread(
                wait_for, lambda: len(temp_files(running)) == 20, "20 temp files"
            )
            refused = await asyncio.to_thread(_over_the_cap, running.target)
            refused.append(await asyncio.to_thread(_get_outcome, running.target))
            for call in admitted:
                assert not call.done()  # still served: idle, but under the timeout
                call.cancel()
            return refused
        finally:
            for channel in channels:
                await channel.close()

    refused = asyncio.run(fill_the_cap_then_try_more())
    assert len(refused) == 281  # 280 Puts and a Get
    assert {(code, reason) for code, reason, _, _ in refused} == {
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
    }
    for _, _, metadata, retry in refused:
        assert metadata["retry_after_s"] == "1"
        assert metadata["limit"] == "20"
        assert retry == 1.0
    # The cancelled streams' temp files go; nothing was stored.
    wait_for(lambda: not temp_files(running), "the temp files to be removed")
    assert stored_objects(running) == []


def _get_outcome(target: str) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    with grpc.insecure_channel(target) as channel:
        call = storage_pb2_grpc.StorageServiceStub(channel).Get(pb.GetRequest(key="any.bin"))
        with pytest.raises(grpc.RpcError) as error:
            next(call)
    return (error.value.code(), *error_details(error.value))  # type: ignore[attr-defined]


def _over_the_cap(target: str) -> list[tuple[grpc.StatusCode, str, dict[str, str], float | None]]:
    """280 Puts of a spec and a chunk over 3 more connections; their outcomes.

    The sync client: grpc.aio's may report a refusal that overtakes its
    pending write as INTERNAL or CANCELLED instead of the gateway's status.
    """
    channels = [grpc.insecure_channel(target, options=OWN_CONNECTION) for _ in range(3)]
    try:
        futures = []
        for i in range(280):
            put = channels[i % 3].stream_unary(
                PUT,
                request_serializer=pb.PutRequest.SerializeToString,
                response_deserializer=pb.PutResponse.FromString,
            )
            messages = [
                pb.PutRequest(spec=pb.PutSpec(key=f"over/{i}")),
                pb.PutRequest(chunk=pb.ChecksummedData(content=IDLE_CHUNK)),
            ]
            futures.append(put.future(iter(messages)))
        return [_refused_outcome(future) for future in futures]
    finally:
        for channel in channels:
            channel.close()


def test_the_client_retries_too_many_streams_after_the_hinted_pause(
    gateway_factory, tmp_path: Path, access_log: AccessLog
):
    running = gateway_factory(
        STORAGE_BACKEND="local", GATEWAY_MAX_STREAMS="1", GATEWAY_STREAM_IDLE_TIMEOUT="1"
    )
    source = tmp_path / "source.bin"
    data = os.urandom(3 * 1024 * 1024)
    source.write_bytes(data)
    # Pauses far shorter than the gateway's hint: without the hint as a floor
    # the client would give up before the slot is free again.
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.02)

    async def hold_the_only_slot() -> None:
        async with grpc.aio.insecure_channel(running.target) as channel:
            await put_outcome(idle_put(channel, "holder.bin"))  # ends by the idle timeout

    holder = threading.Thread(target=asyncio.run, args=(hold_the_only_slot(),))
    holder.start()
    try:
        wait_for(lambda: len(temp_files(running)) == 1, "the holder's temp file")
        with Client(running.target, timeout=30) as client:
            info = client.put_file("retried.bin", source, resumable=True, retry=policy)
            assert client.get_bytes("retried.bin") == data
    finally:
        holder.join(60)
    assert info.size == len(data)
    statuses = [r.status for r in access_log.records if r.rpc_method == "Put"]  # type: ignore[attr-defined]
    assert "RESOURCE_EXHAUSTED" in statuses
    assert statuses[-1] == "OK"


def test_signed_url_transfers_count_against_the_same_cap(gateway_factory):
    """One cap for both listeners: with the gRPC streams holding it, a signed
    PUT is refused with 429 TOO_MANY_STREAMS and Retry-After, and stores nothing;
    once they end, the same URL works."""
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_MAX_STREAMS="2")
    with Client(running.target) as client:
        url = client.sign_url("signed.bin", method="PUT").url

    async def hold_the_cap_and_try_http():
        async with grpc.aio.insecure_channel(running.target) as channel:
            held = [idle_put(channel, f"idle/{i}") for i in range(2)]
            await asyncio.to_thread(
                wait_for, lambda: running.gateway.stream_limits.active == 2, "2 held streams"
            )
            async with httpx.AsyncClient() as http:
                refused = await http.put(url, content=b"payload")
            for call in held:
                call.cancel()
            return refused

    refused = asyncio.run(hold_the_cap_and_try_http())
    assert refused.status_code == 429
    assert refused.headers["X-Sgw-Reason"] == "TOO_MANY_STREAMS"
    assert refused.headers["Retry-After"] == "1"
    assert "GATEWAY_MAX_STREAMS" in refused.text
    assert stored_objects(running) == []
    wait_for(lambda: running.gateway.stream_limits.active == 0, "the held streams to end")
    assert httpx.put(url, content=b"payload").status_code == 200
    with Client(running.target) as client:
        assert client.get_bytes("signed.bin") == b"payload"


def _advertised_max_concurrent_streams(target: str) -> int | None:
    """SETTINGS_MAX_CONCURRENT_STREAMS from the server's first HTTP/2 SETTINGS
    frame (RFC 9113 6.5), read over a raw connection."""
    host, _, port = target.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)[:3] + b"\x04" + bytes(5))
        received = b""
        while True:
            while len(received) < 9:
                more = sock.recv(65536)
                assert more, "the server closed before its SETTINGS"
                received += more
            length = int.from_bytes(received[:3], "big")
            kind, flags = received[3], received[4]
            while len(received) < 9 + length:
                more = sock.recv(65536)
                assert more, "the server closed mid-frame"
                received += more
            payload, received = received[9 : 9 + length], received[9 + length :]
            if kind == 0x4 and not flags & 0x1:  # SETTINGS, not an ACK
                for at in range(0, len(payload), 6):
                    if int.from_bytes(payload[at : at + 2], "big") == 0x3:
                        return int.from_bytes(payload[at + 2 : at + 6], "big")
                return None


def test_streams_past_the_per_connection_cap_wait_for_a_free_slot(gateway_factory):
    """grpc.max_concurrent_streams: the gateway tells each connection it may
    carry at most this many streams at once; one more waits (the client queues
    it) and goes ahead when a slot frees (here: the idle ones time out),
    rather than being refused."""
    running = gateway_factory(
        STORAGE_BACKEND="memory",
        GATEWAY_MAX_STREAMS_PER_CONNECTION="2",
        GATEWAY_STREAM_IDLE_TIMEOUT="1",
    )
    assert _advertised_max_concurrent_streams(running.target) == 2

    async def three_streams_on_one_connection():
        async with grpc.aio.insecure_channel(running.target) as channel:
            idle = [idle_put(channel, "idle/0"), idle_put(channel, "idle/1")]
            await asyncio.to_thread(
                wait_for, lambda: running.gateway.stream_limits.active == 2, "2 streams"
            )
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            third = await put_outcome(stub.Put(put_messages("third.bin", b"third")))
            return third, [(await put_outcome(call))[:2] for call in idle]

    (code, *_), idle = asyncio.run(three_streams_on_one_connection())
    assert code == grpc.StatusCode.OK
    assert idle == [(grpc.StatusCode.DEADLINE_EXCEEDED, "STREAM_IDLE_TIMEOUT")] * 2
    with Client(running.target) as client:
        assert client.get_bytes("third.bin") == b"third"

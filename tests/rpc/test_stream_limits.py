"""Stream limits: the gateway-wide cap, the idle timeout, the byte budget.

Hundreds of Put streams that send a spec and a chunk and then go silent are
opened over real connections (grpc.aio, one task each); each stream must end
with a status that says why, and no temp file or object may be left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from storagegw import Client, RetryPolicy
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import AccessLog, RunningGateway
from tests.rpc_calls import error_reason, put_messages

PUT = "/storagegw.v1.StorageService/Put"
# Over the local backend's in-memory buffer (256 KiB): each stream gets a temp file.
IDLE_CHUNK = os.urandom(300 * 1024)
# Distinct connections: channels to one target otherwise share one.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _details(error: Any) -> tuple[str, dict[str, str], float | None]:
    """(ErrorInfo reason, its metadata, RetryInfo delay in s) of a failed call."""
    reason, metadata, retry = "", {}, None
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                hint = error_details_pb2.RetryInfo()
                detail.Unpack(hint)
                retry = hint.retry_delay.ToTimedelta().total_seconds()
    return reason, metadata, retry


def _idle_put(channel: grpc.aio.Channel, key: str, first: pb.PutRequest | None = None):
    """A Put stream that sends a spec and a chunk, then nothing; the call."""
    quiet = asyncio.Event()  # never set: the client stays silent until it cancels

    async def messages():
        yield first or pb.PutRequest(spec=pb.PutSpec(key=key))
        yield pb.PutRequest(chunk=pb.ChecksummedData(content=IDLE_CHUNK))
        await quiet.wait()

    put = channel.stream_unary(
        PUT,
        request_serializer=pb.PutRequest.SerializeToString,
        response_deserializer=pb.PutResponse.FromString,
    )
    return put(messages())


async def _outcome(call) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return (error.code(), *_details(error))
    return grpc.StatusCode.OK, "", {}, None


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll a state (bounded): the gateway acts on its own schedule."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _temp_files(running: RunningGateway) -> list[str]:
    tmp = Path(running.data_dir) / "default" / "tmp"
    return os.listdir(tmp) if tmp.exists() else []


def _stored(running: RunningGateway) -> list[str]:
    objects = Path(running.data_dir) / "default" / "objects"
    return [p.name for p in objects.rglob("*") if p.is_file()] if objects.exists() else []


def _refused_outcome(
    future: grpc.Future,
) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    error = future.exception(timeout=60)
    assert isinstance(error, grpc.RpcError), "the Put was not refused"
    return (error.code(), *_details(error))  # type: ignore[attr-defined]


def test_streams_over_the_cap_are_refused_at_once_with_a_retry_hint(gateway_factory):
    # The idle timeout stays long: only the cap ends streams here.
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_MAX_STREAMS="20")

    async def fill_the_cap_then_try_more():
        channels = [
            grpc.aio.insecure_channel(running.target, options=OWN_CONNECTION) for _ in range(3)
        ]
        try:
            admitted = [_idle_put(channels[i % 3], f"idle/{i}") for i in range(20)]
            # Those 20 hold the cap (each has its temp file); 280 more are refused.
            await asyncio.to_thread(
                _wait_for, lambda: len(_temp_files(running)) == 20, "20 temp files"
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
    _wait_for(lambda: not _temp_files(running), "the temp files to be removed")
    assert _stored(running) == []


def _get_outcome(target: str) -> tuple[grpc.StatusCode, str, dict[str, str], float | None]:
    with grpc.insecure_channel(target) as channel:
        call = storage_pb2_grpc.StorageServiceStub(channel).Get(pb.GetRequest(key="any.bin"))
        with pytest.raises(grpc.RpcError) as error:
            next(call)
    return (error.value.code(), *_details(error.value))  # type: ignore[attr-defined]


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


def test_idle_put_streams_end_with_stream_idle_timeout_and_leave_nothing(gateway_factory):
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_STREAM_IDLE_TIMEOUT="2")
    data = os.urandom(40 * 64 * 1024)

    async def slow_messages():
        # Paced at a twentieth of the timeout (the gateway shares this process,
        # and its 200 refusals at once can hold the slow stream's next message
        # back on a loaded machine); the whole stream lasts two timeouts.
        for message in put_messages("slow.bin", data, chunk_size=64 * 1024):
            await asyncio.sleep(0.1)
            yield message

    async def scenario():
        channels = [
            grpc.aio.insecure_channel(running.target, options=OWN_CONNECTION) for _ in range(3)
        ]
        try:
            slow = storage_pb2_grpc.StorageServiceStub(channels[0]).Put(slow_messages())
            calls = [_idle_put(channels[i % 3], f"idle/{i}") for i in range(200)]
            outcomes = await asyncio.wait_for(asyncio.gather(*map(_outcome, calls)), 60)
            return outcomes, await asyncio.wait_for(slow, 60)
        finally:
            for channel in channels:
                await channel.close()

    outcomes, slow_response = asyncio.run(scenario())
    assert {(code, reason) for code, reason, _, _ in outcomes} == {
        (grpc.StatusCode.DEADLINE_EXCEEDED, "STREAM_IDLE_TIMEOUT")
    }
    assert {metadata["idle_timeout_s"] for _, _, metadata, _ in outcomes} == {"2"}
    # The status comes after the write was aborted: no temp file is left,
    # and only the stream that kept sending was stored.
    assert _temp_files(running) == []
    assert _stored(running) == ["slow.bin"]
    assert slow_response.object.size == len(data)
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        got = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(key="slow.bin")))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def _open_files_under(directory: Path) -> list[str]:
    """Files under directory that this process (the gateway's, here) holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(directory)):
                found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_get_whose_client_stops_reading_is_ended(gateway_factory, access_log: AccessLog):
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_STREAM_IDLE_TIMEOUT="1")
    objects = Path(running.data_dir) / "default" / "objects"
    data = os.urandom(64 * 1024 * 1024)
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        stub.Put(put_messages("big.bin", data))
        responses = stub.Get(pb.GetRequest(key="big.bin"))
        received = len(next(responses).chunk.content)
        # The client takes nothing more: flow control stops the gateway's
        # writes, and after the timeout it closes the object file.
        _wait_for(lambda: not _open_files_under(objects), "the reader to be closed")
        # The client, reading on, gets what was already sent, then the status.
        sizes: list[int] = []
        with pytest.raises(grpc.RpcError) as error:
            sizes.extend(len(response.chunk.content) for response in responses)
    assert received + sum(sizes) < len(data)
    code, reason = error_reason(error.value)
    assert (code, reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "STREAM_IDLE_TIMEOUT")
    assert access_log.wait("Get").status == "DEADLINE_EXCEEDED"  # type: ignore[attr-defined]


def test_an_idle_resumable_stream_keeps_what_was_persisted(gateway_factory):
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_STREAM_IDLE_TIMEOUT="1")
    data = IDLE_CHUNK + os.urandom(100 * 1024)
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        upload_id = stub.StartUpload(
            pb.StartUploadRequest(spec=pb.PutSpec(key="resumed.bin"))
        ).upload_id

    async def idle_segment():
        async with grpc.aio.insecure_channel(running.target) as aio_channel:
            call = _idle_put(aio_channel, "", pb.PutRequest(upload_id=upload_id))
            return await asyncio.wait_for(_outcome(call), 60)

    code, reason, _, _ = asyncio.run(idle_segment())
    assert (code, reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "STREAM_IDLE_TIMEOUT")
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        persisted = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size
        assert 0 <= persisted <= len(IDLE_CHUNK)
        rest = data[persisted:]
        messages = [
            pb.PutRequest(upload_id=upload_id, write_offset=persisted),
            pb.PutRequest(chunk=pb.ChecksummedData(content=rest), finish_write=True),
        ]
        response = stub.Put(iter(messages))
        assert response.object.size == len(data)
        got = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(key="resumed.bin")))
    assert got == data


def test_puts_over_the_byte_budget_wait_and_complete(gateway_factory):
    # A budget of one full message: concurrent Puts take turns, none fails.
    running = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_MAX_BUFFERED_BYTES="4MiB")
    blobs = {f"budget/{i}": os.urandom(6 * 1024 * 1024 + i) for i in range(8)}
    errors: list[BaseException] = []

    def put(key: str, data: bytes) -> None:
        try:
            with grpc.insecure_channel(running.target) as channel:
                storage_pb2_grpc.StorageServiceStub(channel).Put(put_messages(key, data))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=put, args=item) for item in blobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        for key, data in blobs.items():
            got = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(key=key)))
            assert got == data
    # The chunks in flight never exceeded the budget: the streams took turns.
    budget = running.gateway.stream_limits.budget
    assert 0 < budget.peak <= 4 * 1024 * 1024
    assert budget.used == 0


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
            await _outcome(_idle_put(channel, "holder.bin"))  # ends by the idle timeout

    holder = threading.Thread(target=asyncio.run, args=(hold_the_only_slot(),))
    holder.start()
    try:
        _wait_for(lambda: len(_temp_files(running)) == 1, "the holder's temp file")
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
            held = [_idle_put(channel, f"idle/{i}") for i in range(2)]
            await asyncio.to_thread(
                _wait_for, lambda: running.gateway.stream_limits.active == 2, "2 held streams"
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
    assert _stored(running) == []
    _wait_for(lambda: running.gateway.stream_limits.active == 0, "the held streams to end")
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
            idle = [_idle_put(channel, "idle/0"), _idle_put(channel, "idle/1")]
            await asyncio.to_thread(
                _wait_for, lambda: running.gateway.stream_limits.active == 2, "2 streams"
            )
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            third = await _outcome(stub.Put(put_messages("third.bin", b"third")))
            return third, [(await _outcome(call))[:2] for call in idle]

    (code, *_), idle = asyncio.run(three_streams_on_one_connection())
    assert code == grpc.StatusCode.OK
    assert idle == [(grpc.StatusCode.DEADLINE_EXCEEDED, "STREAM_IDLE_TIMEOUT")] * 2
    with Client(running.target) as client:
        assert client.get_bytes("third.bin") == b"third"

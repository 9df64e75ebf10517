"""Stream limits: the idle timeout and the byte budget.

Streams that go silent (Puts, resumable segments, Gets whose client stops reading)
must end with a status that says why, leaving no temp file, open file or object
behind, and keeping what a resumable upload persisted; Puts over the byte budget
wait and complete."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.log_records import AccessLog
from tests.rpc.idle_streams import (
    IDLE_CHUNK,
    OWN_CONNECTION,
    idle_put,
    put_outcome,
    stored_objects,
    temp_files,
    wait_for,
)
from tests.rpc_calls import error_reason, put_messages


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
            calls = [idle_put(channels[i % 3], f"idle/{i}") for i in range(200)]
            outcomes = await asyncio.wait_for(asyncio.gather(*map(put_outcome, calls)), 60)
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
    assert temp_files(running) == []
    assert stored_objects(running) == ["slow.bin"]
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
        wait_for(lambda: not _open_files_under(objects), "the reader to be closed")
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
            call = idle_put(aio_channel, "", pb.PutRequest(upload_id=upload_id))
            return await asyncio.wait_for(put_outcome(call), 60)

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

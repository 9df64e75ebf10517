"""Every way a Put can go wrong leaves nothing stored and says why."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import signal_first_write
from tests.rpc_calls import CHUNK, call_error, crc, put, put_messages


def assert_absent(stub, key):
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key=key))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
    assert list(stub.List(pb.ListRequest()).objects) == []


def assert_no_temp_files(gateway):
    tmp = gateway.data_dir / "default" / "tmp"
    if tmp.exists():
        assert list(tmp.iterdir()) == []


def put_error(stub, messages):
    return call_error(stub.Put, iter(messages))


def test_data_before_spec(stub, gateway):
    code, reason, message = put_error(stub, [pb.PutRequest(chunk=pb.ChecksummedData(content=b"x"))])
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert "first" in message
    assert_no_temp_files(gateway)


def test_second_spec(stub, gateway):
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="k")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"x")),
        pb.PutRequest(spec=pb.PutSpec(key="other")),
    ]
    code, reason, _ = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


def test_empty_stream(stub):
    code, reason, _ = put_error(stub, [])
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")


def test_stream_without_finish_stores_nothing(stub, gateway):
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="k")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"abc")),
    ]
    code, reason, message = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert "finish_write" in message
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


def test_message_after_finish(stub):
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="k"), finish_write=True),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"late")),
    ]
    code, reason, _ = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert_absent(stub, "k")


def test_wrong_write_offset(stub):
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="k")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"abc")),
        pb.PutRequest(write_offset=10, chunk=pb.ChecksummedData(content=b"def")),
    ]
    code, reason, message = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert "3 bytes" in message
    assert_absent(stub, "k")


def test_chunk_checksum_mismatch(stub, gateway):
    messages = list(put_messages("k", os.urandom(3 * CHUNK)))
    messages[2].chunk.crc32c ^= 1
    code, reason, message = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert f"offset {CHUNK}" in message
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


@pytest.mark.parametrize("which", ["crc32c", "sha256"])
def test_whole_object_checksum_mismatch(stub, gateway, which):
    messages = list(put_messages("k", os.urandom(CHUNK + 5)))
    if which == "crc32c":
        messages[-1].object_checksums.crc32c ^= 1
    else:
        messages[-1].object_checksums.sha256 = hashlib.sha256(b"other").digest()
    code, reason, message = put_error(stub, messages)
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert which in message
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


def test_spec_checksum_mismatch(stub):
    spec = pb.PutSpec(key="k", expected_checksums=pb.ObjectChecksums(crc32c=crc(b"nope")))
    code, reason, _ = put_error(stub, put_messages("k", b"data", spec=spec))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert_absent(stub, "k")


def test_malformed_sha256_is_invalid(stub):
    spec = pb.PutSpec(key="k", expected_checksums=pb.ObjectChecksums(sha256=b"short"))
    code, reason, _ = put_error(stub, put_messages("k", b"data", spec=spec))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


@pytest.mark.parametrize("declared", [5, 7])
def test_size_mismatch(stub, gateway, declared):
    spec = pb.PutSpec(key="k", size=declared)
    code, reason, message = put_error(stub, put_messages("k", b"123456", spec=spec))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "SIZE_MISMATCH")
    assert str(declared) in message
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


def test_an_upload_id_the_gateway_did_not_issue_is_refused(stub):
    code, reason, _ = put_error(stub, [pb.PutRequest(upload_id="u-1", write_offset=5)])
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPLOAD_ID")


def test_a_plain_put_starts_at_offset_zero(stub):
    code, reason, _ = put_error(stub, [pb.PutRequest(spec=pb.PutSpec(key="k"), write_offset=5)])
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STREAM")
    assert_absent(stub, "k")


def test_oversized_message_is_refused(stub, gateway):
    too_big = b"x" * (5 * 1024 * 1024)
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="k")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=too_big)),
    ]
    code, _, message = put_error(stub, messages)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in message
    assert_absent(stub, "k")
    assert_no_temp_files(gateway)


def test_unsupported_option_on_local_and_memory(gateway, stub):
    if gateway.backend_name.startswith(("s3", "gcs")):
        pytest.skip("S3 and GCS have storage classes")
    spec = pb.PutSpec(key="k", storage_class="GLACIER")
    code, reason, message = put_error(stub, put_messages("k", b"x", spec=spec))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_OPTION")
    assert "storage_class" in message


def test_max_object_size(gateway_factory):
    running = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_MAX_OBJECT_SIZE="1MiB")
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, reason, _ = put_error(stub, put_messages("k", b"x" * (CHUNK + 1)))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OBJECT_TOO_LARGE")
        declared = pb.PutSpec(key="k", size=CHUNK + 1)
        code, reason, _ = put_error(stub, [pb.PutRequest(spec=declared, finish_write=True)])
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OBJECT_TOO_LARGE")
        assert put(stub, "k", b"x" * CHUNK).size == CHUNK
        assert_absent_other = list(stub.List(pb.ListRequest()).objects)
        assert [o.key for o in assert_absent_other] == ["k"]


def test_memory_quota(gateway_factory):
    running = gateway_factory(STORAGE_BACKEND="memory", STORAGE_MEMORY_QUOTA="2MiB")
    with grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, "a", b"x" * CHUNK)
        code, reason, _ = put_error(stub, put_messages("b", b"y" * (CHUNK + 1)))
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED")
        assert [o.key for o in stub.List(pb.ListRequest()).objects] == ["a"]
        # Replacing an object reuses its space.
        assert put(stub, "a", b"z" * (2 * CHUNK)).size == 2 * CHUNK


def test_cancel_mid_put_leaves_nothing(gateway, stub, access_log):
    written = signal_first_write(gateway)
    release = threading.Event()

    def messages():
        yield pb.PutRequest(spec=pb.PutSpec(key="cancelled"))
        for _ in range(3):
            yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
        release.wait(30)  # hold the stream open until the test cancels it

    future = stub.Put.future(messages())
    assert written.wait(30), "the gateway never wrote a byte"
    future.cancel()
    record = access_log.wait("Put")
    release.set()  # only now: an iterator that ended would half-close the stream instead
    # grpc delivers the client's cancellation to the handler either as such or,
    # first, as the end of the request stream (then: no finish_write, so
    # INVALID_STREAM); either way the call fails and nothing is stored.
    assert record.status in ("CANCELLED", "INVALID_ARGUMENT")
    assert record.bytes > 0
    assert_absent(stub, "cancelled")
    assert_no_temp_files(gateway)


def test_concurrent_puts_to_one_key_last_writer_wins(gateway, stub):
    bodies = [os.urandom(CHUNK + i * 4099) for i in range(8)]

    def upload(body):
        return put(stub, "contended", body, chunk_size=256 * 1024)

    with ThreadPoolExecutor(8) as pool:
        infos = list(pool.map(upload, bodies))
    assert all(info.size == len(body) for info, body in zip(infos, bodies, strict=True))
    head = stub.Head(pb.HeadRequest(key="contended")).object
    stored = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(key="contended")))
    assert stored in bodies  # one whole upload, never a mix
    assert hashlib.sha256(stored).digest() == head.sha256
    assert head.generation in {info.generation for info in infos}
    if not gateway.backend_name.startswith("s3"):
        # Local and memory number writes in commit order: the last one won.
        # (S3 stamps a write when it begins; the store decides which completes last.)
        assert head.generation == max(info.generation for info in infos)

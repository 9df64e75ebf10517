"""Put and Get round trips through a real gateway, on every backend."""

from __future__ import annotations

import hashlib
import os

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import CHUNK, call_error, crc, get, put

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_keeps_bytes_and_checksums(stub, size):
    data = os.urandom(size)
    info = put(stub, "dir/object.bin", data)
    assert info.size == size
    assert info.crc32c == crc(data)
    assert info.sha256 == hashlib.sha256(data).digest()
    assert info.bucket == "default"
    responses, body = get(stub, "dir/object.bin")
    assert body == data
    assert responses[0].object.etag == info.etag
    assert responses[0].content_range == pb.ContentRange(start=0, end=size, complete_length=size)
    for response in responses:
        assert len(response.chunk.content) <= CHUNK
        assert response.chunk.crc32c == crc(response.chunk.content)
    assert all(not r.HasField("object") for r in responses[1:])


def test_256_mib_round_trip(stub):
    # Random-looking but cheap to make: a 1 MiB random block with a counter per chunk.
    block = os.urandom(CHUNK)
    data = b"".join(i.to_bytes(8, "big") + block[8:] for i in range(256))
    info = put(stub, "big/256mib", data)
    assert info.size == 256 * CHUNK
    assert info.sha256 == hashlib.sha256(data).digest()
    digest = hashlib.sha256()
    size = 0
    for response in stub.Get(pb.GetRequest(key="big/256mib")):
        assert response.chunk.crc32c == crc(response.chunk.content)
        digest.update(response.chunk.content)
        size += len(response.chunk.content)
    assert size == len(data)
    assert digest.digest() == info.sha256


def test_put_stores_content_type_and_metadata(stub):
    spec = pb.PutSpec(key="a.txt", content_type="text/plain", metadata={"owner": "ops", "n": "1"})
    info = put(stub, "a.txt", b"hello", spec=spec)
    assert info.content_type == "text/plain"
    assert dict(info.metadata) == {"owner": "ops", "n": "1"}
    head = stub.Head(pb.HeadRequest(key="a.txt")).object
    assert head.content_type == "text/plain"
    assert dict(head.metadata) == {"owner": "ops", "n": "1"}
    assert head.create_time.seconds > 0


def test_default_content_type(stub):
    assert put(stub, "blob", b"x").content_type == "application/octet-stream"


def test_overwrite_changes_generation_and_etag(stub):
    first = put(stub, "k", b"one")
    second = put(stub, "k", b"two")
    assert second.generation > first.generation
    assert second.etag != first.etag
    assert get(stub, "k")[1] == b"two"


def test_same_content_rewritten_gets_new_generation(stub):
    first = put(stub, "k", b"same")
    second = put(stub, "k", b"same")
    assert second.generation > first.generation


def test_single_message_put(stub):
    # One message carrying spec, data and the finish flag.
    request = pb.PutRequest(
        spec=pb.PutSpec(key="one-shot"),
        chunk=pb.ChecksummedData(content=b"abc"),
        finish_write=True,
    )
    info = stub.Put(iter([request])).object
    assert info.size == 3
    assert get(stub, "one-shot")[1] == b"abc"


def test_chunks_without_crc_are_accepted(stub):
    messages = [
        pb.PutRequest(spec=pb.PutSpec(key="nocrc")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"abc")),
        pb.PutRequest(chunk=pb.ChecksummedData(content=b"def"), finish_write=True),
    ]
    assert stub.Put(iter(messages)).object.crc32c == crc(b"abcdef")


def test_expected_checksums_in_spec_are_checked(stub):
    data = b"payload"
    spec = pb.PutSpec(
        key="k",
        size=len(data),
        expected_checksums=pb.ObjectChecksums(
            crc32c=crc(data), sha256=hashlib.sha256(data).digest()
        ),
    )
    assert put(stub, "k", data, spec=spec).size == len(data)


def test_get_missing_object_is_not_found(stub):
    code, reason, message = call_error(stub.Get, pb.GetRequest(key="nope"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert reason == "OBJECT_NOT_FOUND"
    assert "nope" in message


def test_head_missing_object_is_not_found(stub):
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key="nope"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")


def test_unknown_bucket_is_not_found(stub):
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(bucket="other", key="k"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "BUCKET_NOT_FOUND")


def test_invalid_bucket_name_is_invalid_argument(stub):
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(bucket="Bad/Name", key="k"))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_BUCKET")


def _open_object_files(root):
    """Paths under root that this process (which hosts the gateway) has open."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            held.append(target)
    return held


def test_cancelled_get_releases_its_file(local_gateway, access_log):
    with grpc.insecure_channel(local_gateway.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, "held", os.urandom(16 * CHUNK))
        objects = local_gateway.data_dir / "default" / "objects"
        call = stub.Get(pb.GetRequest(key="held"))
        next(call)
        assert _open_object_files(objects) == [str(objects / "held")]
        call.cancel()
        assert access_log.wait("Get").status == "CANCELLED"
        assert _open_object_files(objects) == []

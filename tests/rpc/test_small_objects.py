"""Small objects on the local backend: a Put may come as one message, spec
included (as the bundled client sends an object under 64 KiB), and a Get of
a range read whole when it was opened is answered with one message."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.rpc_calls import call_error, crc, get


@pytest.fixture
def stub(local_gateway) -> Iterator[storage_pb2_grpc.StorageServiceStub]:
    with grpc.insecure_channel(local_gateway.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def whole(key: str, data: bytes, **spec: object) -> pb.PutRequest:
    """A whole Put in one message: spec, data and checksums, finish_write."""
    return pb.PutRequest(
        spec=pb.PutSpec(key=key, size=len(data), **spec),  # type: ignore[arg-type]
        chunk=pb.ChecksummedData(content=data, crc32c=crc(data)),
        object_checksums=pb.ObjectChecksums(crc32c=crc(data), sha256=hashlib.sha256(data).digest()),
        finish_write=True,
    )


def test_a_put_in_one_message_stores_the_object(stub) -> None:
    data = os.urandom(4096)
    response = stub.Put(iter([whole("one/k", data, content_type="text/plain")]))
    assert response.object.size == len(data)
    assert response.object.crc32c == crc(data)
    assert get(stub, "one/k")[1] == data
    assert stub.Head(pb.HeadRequest(key="one/k")).object.content_type == "text/plain"


def test_a_put_in_one_message_is_refused_like_any_other(stub) -> None:
    data = os.urandom(4096)
    code, reason, _ = call_error(stub.Put, iter([whole("bad//key", data)]))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY")
    stub.Put(iter([whole("one/k", data)]))
    precondition = pb.Preconditions(if_none_match="*")
    code, reason, _ = call_error(
        stub.Put, iter([whole("one/k", b"other", preconditions=precondition)])
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED")
    code, _, message = call_error(
        stub.Put, iter([whole("one/late", data), pb.PutRequest(write_offset=len(data))])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "after finish_write" in message
    assert get(stub, "one/k")[1] == data
    assert [o.key for o in stub.List(pb.ListRequest()).objects] == ["one/k"]


@pytest.mark.parametrize(
    ("fields", "start", "end"),
    [
        ({}, 0, 4096),
        ({"read_offset": 100, "read_limit": 50}, 100, 150),
        ({"read_offset": -10}, 4086, 4096),
    ],
)
def test_a_small_get_is_one_message_with_the_object_range_and_checksum(
    stub, fields: dict[str, int], start: int, end: int
) -> None:
    data = os.urandom(4096)
    info = stub.Put(iter([whole("small/k", data)])).object
    responses, body = get(stub, "small/k", **fields)
    assert body == data[start:end]
    (only,) = responses
    assert only.object.etag == info.etag
    assert only.content_range == pb.ContentRange(start=start, end=end, complete_length=4096)
    assert only.chunk.crc32c == crc(data[start:end])

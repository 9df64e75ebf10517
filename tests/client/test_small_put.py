"""A Put of an object declared smaller than SMALL_PUT goes as one message,
spec included; what a caller sees stays the same, against a real gateway."""

from __future__ import annotations

import hashlib
import os

import pytest

from storagegw import AsyncClient, Client, PreconditionFailed, SizeMismatch
from storagegw._streams import SMALL_PUT, PutStream
from storagegw.v1 import storage_pb2 as pb


@pytest.mark.parametrize("compute_sha256", [False, True])
def test_a_small_object_is_one_message_holding_spec_data_and_checksums(
    compute_sha256: bool,
) -> None:
    data = os.urandom(4096)
    stream = PutStream(pb.PutSpec(key="k", size=len(data), compute_sha256=compute_sha256))
    assert stream.start() is None
    assert stream.feed(data) == []
    (only,) = [stream.finish()]
    message = pb.PutRequest.FromString(only.SerializeToString())
    assert message.spec.key == "k"
    assert message.write_offset == 0
    assert message.chunk.content == data
    assert message.object_checksums.HasField("crc32c")
    assert message.chunk.crc32c == message.object_checksums.crc32c
    # The SHA-256 only when the spec asks the gateway to check one (verify_sha256).
    expected = hashlib.sha256(data).digest() if compute_sha256 else b""
    assert message.object_checksums.sha256 == expected
    assert message.finish_write


def test_an_object_of_unknown_or_larger_size_sends_its_spec_first() -> None:
    assert PutStream(pb.PutSpec(key="k")).start() is not None
    assert PutStream(pb.PutSpec(key="k", size=SMALL_PUT)).start() is not None


def test_small_put_stores_the_object_with_its_metadata(local_gateway) -> None:
    data = os.urandom(4096)
    with Client(local_gateway.target, timeout=30) as client:
        info = client.put_bytes("s/one", data, content_type="text/plain", metadata={"m": "v"})
        assert (info.size, info.content_type) == (len(data), "text/plain")
        assert client.get_bytes("s/one") == data
        assert client.head("s/one").metadata == {"m": "v"}
        empty = client.put_bytes("s/empty", b"")
        assert empty.size == 0
        assert client.get_bytes("s/empty") == b""


async def test_small_async_put_stores_the_object_and_keeps_preconditions(local_gateway) -> None:
    data = os.urandom(4096)
    async with AsyncClient(local_gateway.target, timeout=30) as client:
        first = await client.put_bytes("s/two", data, if_none_match="*")
        assert await client.get_bytes("s/two") == data
        with pytest.raises(PreconditionFailed):
            await client.put_bytes("s/two", b"other", if_none_match="*")
        assert (await client.head("s/two")).generation == first.generation
        assert await client.get_bytes("s/two") == data


def test_a_source_larger_than_its_small_declared_size_is_refused_for_its_size(
    local_gateway,
) -> None:
    # Small chunks: the data messages start before the stream ends, so the
    # spec must go ahead of them for the gateway to judge the size.
    with Client(local_gateway.target, timeout=30, chunk_size=1024) as client:
        with pytest.raises(SizeMismatch):
            client.put_file("s/three", iter([b"x" * 1024] * 4), size=10)
        with pytest.raises(SizeMismatch):
            client.put_file("s/three", iter([b"y" * 100]), size=10)
        assert not client.exists("s/three")

"""The hand-encoded GetResponse is the protobuf encoding the generated class reads."""

from __future__ import annotations

import os

import pytest

from gateway.rpc import wire
from storagegw.v1 import storage_pb2 as pb
from tests.rpc_calls import crc


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 1024 * 1024, 2 * 1024 * 1024])
def test_chunk_encoding_parses_back(size):
    data = os.urandom(size)
    parsed = pb.GetResponse.FromString(wire.encode_chunk(data))
    assert parsed.chunk.content == data
    assert parsed.chunk.crc32c == crc(data)
    assert parsed.chunk.HasField("crc32c")
    assert not parsed.HasField("object")


def test_head_encoding_parses_back():
    info = pb.ObjectInfo(bucket="b", key="k/é", size=10, metadata={"a": "b"}, crc32c=7)
    content_range = pb.ContentRange(start=2, end=10, complete_length=10)
    parsed = pb.GetResponse.FromString(
        wire.encode_chunk(b"12345678", wire.encode_head(info, content_range))
    )
    assert parsed.object == info
    assert parsed.content_range == content_range
    assert parsed.chunk.content == b"12345678"


async def test_encoded_chunks_yields_every_chunk_in_order_with_sizes():
    pieces = [os.urandom(n) for n in (10, 200_000, 3, 1024 * 1024)]

    async def chunks():
        for piece in pieces:
            yield piece

    head = wire.encode_head(pb.ObjectInfo(key="k"), pb.ContentRange(end=5))
    out = [item async for item in wire.encoded_chunks(chunks(), head)]
    assert [size for _, size in out] == [len(p) for p in pieces]
    parsed = [pb.GetResponse.FromString(message) for message, _ in out]
    assert [p.chunk.content for p in parsed] == pieces
    assert parsed[0].object.key == "k"
    assert not any(p.HasField("object") for p in parsed[1:])


async def test_encoded_chunks_of_nothing_still_sends_the_head():
    async def nothing():
        return
        yield b""

    head = wire.encode_head(pb.ObjectInfo(key="e"), pb.ContentRange())
    ((message, size),) = [item async for item in wire.encoded_chunks(nothing(), head)]
    parsed = pb.GetResponse.FromString(message)
    assert size == 0
    assert parsed.object.key == "e"
    assert parsed.chunk.content == b""
    assert parsed.chunk.crc32c == 0

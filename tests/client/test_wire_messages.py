"""Put and Get data messages written and read by hand (storagegw._wire): the
same bytes protobuf writes and reads, and the reader state that checks the
received Get messages as they came."""

from __future__ import annotations

import random

import pytest

from storagegw._streams import ReaderState
from storagegw._wire import decode_get_chunk, encode_put_chunk
from storagegw.errors import ChecksumMismatch
from storagegw.v1 import storage_pb2 as pb
from tests.rpc_calls import crc as native


@pytest.mark.parametrize("write_offset", [0, 1, 127, 128, 300, 2**40])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 70_000])
@pytest.mark.parametrize("crc", [0, 1, 0xFFFFFFFF])
def test_put_data_messages_are_what_protobuf_serializes(
    write_offset: int, size: int, crc: int
) -> None:
    content = random.Random(size).randbytes(size)
    expected = pb.PutRequest(
        write_offset=write_offset, chunk=pb.ChecksummedData(content=content, crc32c=crc)
    )
    assert encode_put_chunk(write_offset, content, crc) == expected.SerializeToString()


@pytest.mark.parametrize("content", [b"", b"x", bytes(range(256)) * 700])
@pytest.mark.parametrize("crc", [0, 1, 0xFFFFFFFF, 0x8A9136AA])
def test_get_data_messages_are_read_as_protobuf_writes_them(content: bytes, crc: int) -> None:
    message = pb.GetResponse(chunk=pb.ChecksummedData(content=content, crc32c=crc))
    assert decode_get_chunk(message.SerializeToString()) == (content, crc)


@pytest.mark.parametrize(
    "message",
    [
        pb.GetResponse(
            object=pb.ObjectInfo(key="k", size=3),
            chunk=pb.ChecksummedData(content=b"abc", crc32c=5),
        ),
        pb.GetResponse(content_range=pb.ContentRange(start=1, end=2, complete_length=3)),
        pb.GetResponse(chunk=pb.ChecksummedData(content=b"no crc")),
        pb.GetResponse(),
    ],
)
def test_other_get_messages_are_left_to_protobuf(message: pb.GetResponse) -> None:
    serialized = message.SerializeToString()
    assert decode_get_chunk(serialized) is None
    for cut in range(1, len(serialized)):
        # A truncated message is taken only where it is a whole data message.
        taken = decode_get_chunk(serialized[:cut])
        if taken is not None:
            prefix = pb.GetResponse.FromString(serialized[:cut])
            assert [name.name for name, _ in prefix.ListFields()] == ["chunk"]
            assert prefix.chunk.HasField("crc32c")
            assert taken == (prefix.chunk.content, prefix.chunk.crc32c)


def test_reader_state_takes_serialized_messages() -> None:
    data = b"hello world"
    state = ReaderState("k")
    first = pb.GetResponse(
        object=pb.ObjectInfo(key="k", size=len(data), crc32c=native(data)),
        chunk=pb.ChecksummedData(content=data[:5], crc32c=native(data[:5])),
    )
    assert state.accept(first.SerializeToString()) == data[:5]
    rest = pb.GetResponse(chunk=pb.ChecksummedData(content=data[5:], crc32c=native(data[5:])))
    assert state.accept(rest.SerializeToString()) == data[5:]
    assert state.accept(None) is None
    bad = ReaderState("k")
    bad.accept(first.SerializeToString())
    wrong = pb.GetResponse(chunk=pb.ChecksummedData(content=data[5:], crc32c=1))
    with pytest.raises(ChecksumMismatch, match="offset 5"):
        bad.accept(wrong.SerializeToString())


def test_reader_state_rejects_a_flipped_byte_in_a_serialized_chunk() -> None:
    data = random.Random(3).randbytes(100_000)
    head = pb.GetResponse(object=pb.ObjectInfo(key="k", size=2 * len(data)))
    chunk = pb.GetResponse(chunk=pb.ChecksummedData(content=data, crc32c=native(data)))
    serialized = chunk.SerializeToString()
    start = len(serialized) - len(data) - 5  # the content's first byte
    for position in (start, start + len(data) // 2, start + len(data) - 1):
        state = ReaderState("k")
        state.accept(head.SerializeToString())
        assert state.accept(serialized) == data
        flipped = bytearray(serialized)
        flipped[position] ^= 0x10
        with pytest.raises(ChecksumMismatch, match="offset 100000"):
            state.accept(bytes(flipped))

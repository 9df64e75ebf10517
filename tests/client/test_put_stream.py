"""The I/O-free logic of an upload (storagegw._streams.PutStream): the messages
it sends for the contract, and its check of what the gateway stored."""

from __future__ import annotations

import hashlib
import random

import pytest

from storagegw import _common, _crc32c
from storagegw._streams import PutStream
from storagegw._wire import PutMessage, serialize_put
from storagegw.errors import ChecksumMismatch, SizeMismatch
from storagegw.v1 import storage_pb2 as pb
from tests.rpc_calls import crc as native


def as_sent(message: PutMessage) -> pb.PutRequest:
    """The message as the gateway parses it (data messages come serialized)."""
    return pb.PutRequest.FromString(serialize_put(message))


def put_stream_messages(
    data: bytes, block_size: int, chunk_size: int, *, sha256: bool = True
) -> list[pb.PutRequest]:
    """The messages of a Put of data; sha256: the spec asks for the object's
    SHA-256 (compute_sha256), as the clients' verify_sha256 does."""
    stream = PutStream(pb.PutSpec(key="k", compute_sha256=sha256), chunk_size)
    messages = [stream.start()]
    for offset in range(0, len(data), block_size):
        messages += stream.feed(data[offset : offset + block_size])
    messages.append(stream.finish())
    return [as_sent(message) for message in messages]


@pytest.mark.parametrize("accelerated", [True, False])
@pytest.mark.parametrize(
    ("size", "block_size", "chunk_size"),
    [(0, 1, 4), (1, 1, 4), (10, 3, 4), (16, 4, 4), (17, 4, 4), (1000, 999, 64), (5000, 64, 1000)],
)
def test_put_stream_follows_the_contract(
    size: int, block_size: int, chunk_size: int, accelerated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not accelerated:
        monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    data = random.Random(size).randbytes(size)
    first, *rest = put_stream_messages(data, block_size, chunk_size)
    assert first.WhichOneof("first_message") == "spec"
    assert not first.HasField("chunk")
    assert all(not m.HasField("spec") for m in rest)
    offset = 0
    for message in rest:
        if message.HasField("chunk"):
            content = message.chunk.content
            assert 0 < len(content) <= chunk_size
            assert message.chunk.crc32c == native(content)
            assert message.write_offset == offset
            offset += len(content)
    # All chunks but the last are full.
    assert all(len(m.chunk.content) == chunk_size for m in rest[:-1])
    assert b"".join(m.chunk.content for m in rest) == data
    last = rest[-1]
    assert last.finish_write
    assert not any(m.finish_write for m in rest[:-1])
    assert last.object_checksums.crc32c == native(data)
    assert last.object_checksums.sha256 == hashlib.sha256(data).digest()
    assert last.write_offset == len(data) - len(last.chunk.content)
    # Not asked for, no SHA-256 is computed or sent; the rest is the same.
    unasked = put_stream_messages(data, block_size, chunk_size, sha256=False)
    assert not unasked[0].spec.compute_sha256
    assert not unasked[-1].object_checksums.sha256
    assert unasked[-1].object_checksums.crc32c == native(data)
    assert [m.chunk for m in unasked[1:]] == [m.chunk for m in rest]


def test_put_stream_sends_a_block_of_exactly_chunk_size_as_one_chunk() -> None:
    stream = PutStream(pb.PutSpec(key="k"), 4)
    block = b"abcd"
    (message,) = stream.feed(block)
    assert as_sent(message).chunk.content == block


def test_put_stream_rejects_use_after_finish() -> None:
    stream = PutStream(pb.PutSpec(key="k"), 4)
    stream.finish()
    with pytest.raises(RuntimeError):
        stream.feed(b"x")
    with pytest.raises(RuntimeError):
        stream.finish()


def test_put_stream_checks_what_the_gateway_stored() -> None:
    stream = PutStream(pb.PutSpec(key="k"), 4)
    stream.feed(b"hello")
    stream.finish()
    good = pb.PutResponse(object=pb.ObjectInfo(key="k", size=5, crc32c=native(b"hello")))
    assert stream.object_info(good).size == 5
    with pytest.raises(ChecksumMismatch):
        stream.object_info(pb.PutResponse(object=pb.ObjectInfo(key="k", size=5, crc32c=1)))
    with pytest.raises(SizeMismatch):
        stream.object_info(pb.PutResponse(object=pb.ObjectInfo(key="k", size=4)))


@pytest.mark.parametrize("chunk_size", [0, _common.MAX_CHUNK_SIZE + 1])
def test_chunk_size_is_bounded(chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        PutStream(pb.PutSpec(key="k"), chunk_size)

"""The client's CRC32C and the I/O-free request and stream logic it feeds."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

import google_crc32c
import pytest

from storagegw import _common, _crc32c
from storagegw._digests import ObjectDigest
from storagegw._streams import GetStreamVerifier, PutStream, ReaderState
from storagegw._types import ObjectInfo
from storagegw._wire import PutMessage, decode_get_chunk, encode_put_chunk, serialize_put
from storagegw.errors import ChecksumMismatch, Internal, SizeMismatch
from storagegw.v1 import storage_pb2 as pb

# RFC 3720 (iSCSI) appendix B.4 test vectors plus the usual check value.
KNOWN_VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


def native(data: bytes) -> int:
    return int(google_crc32c.value(data))


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the accelerator switched off, as when google_crc32c is absent."""
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert not _crc32c.accelerated()


# ---------------------------------------------------------------- crc32c


@pytest.mark.parametrize(("data", "expected"), KNOWN_VECTORS)
def test_pure_python_known_vectors(data: bytes, expected: int) -> None:
    assert _crc32c.crc32c_extend_py(0, data) == expected


@pytest.mark.parametrize(("data", "expected"), KNOWN_VECTORS)
def test_public_crc32c_known_vectors_both_paths(
    data: bytes, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _crc32c.crc32c(data) == expected
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert _crc32c.crc32c(data) == expected


def test_accelerator_is_used_when_installed() -> None:
    assert _crc32c.accelerated()


def test_pure_python_matches_google_crc32c_on_random_data() -> None:
    rng = random.Random(20240601)
    for length in [1, 2, 3, 7, 8, 9, 255, 256, 1000, 4096, 65_537]:
        data = rng.randbytes(length)
        assert _crc32c.crc32c_extend_py(0, data) == native(data), length


def test_pure_python_extends_like_google_crc32c() -> None:
    rng = random.Random(7)
    crc = 0
    whole = b""
    for _ in range(20):
        piece = rng.randbytes(rng.randrange(0, 3000))
        crc = _crc32c.crc32c_extend_py(crc, piece)
        whole += piece
        assert crc == native(whole)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_accepts_other_buffers(kind: type, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"123456789"
    assert _crc32c.crc32c(kind(data)) == 0xE3069283
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert _crc32c.crc32c(kind(data)) == 0xE3069283


def test_combine_matches_crc_of_concatenation() -> None:
    rng = random.Random(99)
    for _ in range(50):
        first = rng.randbytes(rng.randrange(0, 5000))
        second = rng.randbytes(rng.randrange(0, 5000))
        combined = _crc32c.crc32c_combine(native(first), native(second), len(second))
        assert combined == native(first + second)


@pytest.mark.usefixtures("pure_python")
def test_accumulator_without_accelerator_combines_chunk_crcs() -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(rng.randrange(0, 2000)) for _ in range(30)]
    accumulator = _crc32c.Crc32cAccumulator()
    for chunk in chunks:
        assert accumulator.add(chunk) == native(chunk)
    assert accumulator.value == native(b"".join(chunks))
    assert accumulator.size == sum(map(len, chunks))


def test_accumulator_combines_large_chunks_of_any_length() -> None:
    # Large chunks are not re-read for the running CRC: it is combined from
    # theirs, whatever their length (odd tails included).
    rng = random.Random(5)
    sizes = [1 << 20, 64 * 1024, 64 * 1024 + 1, 300_007, 1 << 20, 12, 2**21 - 1]
    chunks = [rng.randbytes(size) for size in sizes]
    accumulator = _crc32c.Crc32cAccumulator()
    for chunk in chunks:
        assert accumulator.add(chunk) == native(chunk)
    assert accumulator.value == native(b"".join(chunks))


# ---------------------------------------------------------------- uploads


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


@pytest.mark.parametrize("accelerated", [True, False])
def test_a_slice_is_checked_in_place_as_strictly_as_copied_out(
    accelerated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not accelerated:
        monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    message = random.Random(7).randbytes(40)
    for start in range(len(message) + 1):
        for end in range(start, len(message) + 1):
            crc = native(message[start:end])
            assert _crc32c.crc32c_within(message, start, end, crc)
            for wrong in (crc ^ 1, crc ^ 0x80000000, native(message[start : end + 1])):
                if wrong != crc:
                    assert not _crc32c.crc32c_within(message, start, end, wrong)


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


# ---------------------------------------------------------------- downloads


def get_responses(
    data: bytes, chunk: int = 4, *, start: int = 0, end: int | None = None
) -> list[pb.GetResponse]:
    end = len(data) if end is None else end
    info = pb.ObjectInfo(
        key="k", size=len(data), crc32c=native(data), sha256=hashlib.sha256(data).digest()
    )
    served = data[start:end]
    responses = [
        pb.GetResponse(
            chunk=pb.ChecksummedData(
                content=served[i : i + chunk], crc32c=native(served[i : i + chunk])
            )
        )
        for i in range(0, len(served), chunk)
    ] or [pb.GetResponse()]
    responses[0].object.CopyFrom(info)
    responses[0].content_range.CopyFrom(
        pb.ContentRange(start=start, end=end, complete_length=len(data))
    )
    return responses


def verify(responses: list[pb.GetResponse], *, sha256: bool = False) -> bytes:
    verifier = GetStreamVerifier("k", sha256=sha256)
    data = b"".join(verifier.accept(r) for r in responses)
    verifier.finish()
    return data


@pytest.mark.parametrize("accelerated", [True, False])
def test_verifier_accepts_an_intact_stream(
    accelerated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not accelerated:
        monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    for data in [b"", b"x", b"hello world, this is data"]:
        assert verify(get_responses(data)) == data
    assert verify(get_responses(b"0123456789", start=2, end=7)) == b"23456"


def test_verifier_rejects_a_corrupted_chunk() -> None:
    responses = get_responses(b"hello world")
    responses[1].chunk.content = b"XXXX"
    with pytest.raises(ChecksumMismatch, match="offset 4") as caught:
        verify(responses)
    assert caught.value.reason == "CHECKSUM_MISMATCH"
    assert caught.value.grpc_error is None


def test_verifier_rejects_a_chunk_without_crc() -> None:
    responses = get_responses(b"hello world")
    responses[1].chunk.ClearField("crc32c")
    with pytest.raises(ChecksumMismatch, match="no crc32c"):
        verify(responses)


def test_verifier_rejects_a_truncated_stream() -> None:
    with pytest.raises(SizeMismatch):
        verify(get_responses(b"hello world")[:-1])


def test_verifier_rejects_extra_data() -> None:
    responses = get_responses(b"hello world")
    responses.append(pb.GetResponse(chunk=pb.ChecksummedData(content=b"!", crc32c=native(b"!"))))
    with pytest.raises(SizeMismatch):
        verify(responses)


def test_verifier_checks_whole_object_crc32c_and_sha256() -> None:
    responses = get_responses(b"hello world")
    responses[0].object.crc32c ^= 1
    with pytest.raises(ChecksumMismatch, match="crc32c"):
        verify(responses)
    responses = get_responses(b"hello world")
    responses[0].object.sha256 = hashlib.sha256(b"other").digest()
    with pytest.raises(ChecksumMismatch, match="sha256"):
        verify(responses, sha256=True)  # verify_sha256
    # Otherwise the CRC32C vouches for the bytes, and the SHA-256 is not computed.
    assert verify(responses) == b"hello world"


def test_verifier_skips_whole_object_checks_for_a_range() -> None:
    responses = get_responses(b"hello world", start=1, end=5)
    responses[0].object.crc32c ^= 1
    assert verify(responses) == b"ello"


def test_verifier_counts_chunks_in_a_shared_digest_once() -> None:
    # A download resumed at 4 after receiving 6 bytes: the overlap is not
    # counted twice, and the digest is the whole object's.
    data = b"hello world"
    digest = ObjectDigest()
    first = GetStreamVerifier("k", digest)
    for response in get_responses(data, chunk=3)[:2]:  # the object with 0..3, then 3..6
        first.accept(response)
    assert digest.size == 6
    second = GetStreamVerifier("k", digest)
    assert b"".join(second.accept(r) for r in get_responses(data, start=4, end=11)) == b"o world"
    second.finish()  # the range is complete; the whole object is the digest's owner's
    assert digest.size == len(data)
    assert digest.sha256 == hashlib.sha256(data).digest()
    assert digest.crc32c == native(data)


def test_verifier_with_a_shared_digest_leaves_the_object_check_to_its_owner() -> None:
    responses = get_responses(b"hello world")
    responses[0].object.sha256 = hashlib.sha256(b"other").digest()
    digest = ObjectDigest()
    verifier = GetStreamVerifier("k", digest)
    for response in responses:
        verifier.accept(response)
    verifier.finish()
    assert digest.size == 11
    with pytest.raises(ChecksumMismatch, match="sha256"):
        digest.check(ObjectInfo.from_proto(responses[0].object), "download corrupted")


def test_verifier_refuses_a_stream_that_skips_bytes_of_a_shared_digest() -> None:
    with pytest.raises(Internal, match="starts at 4"):
        GetStreamVerifier("k", ObjectDigest()).accept(get_responses(b"hello", start=4, end=5)[0])


def test_verifier_needs_the_object_first() -> None:
    with pytest.raises(Internal):
        GetStreamVerifier("k").accept(pb.GetResponse(chunk=pb.ChecksummedData(content=b"")))
    with pytest.raises(Internal):
        GetStreamVerifier("k").finish()


def test_reader_state_buffers() -> None:
    state = ReaderState("k")
    state.buffer += b"abcdef"
    assert state.take_buffered(2) == b"ab"
    assert state.take_buffered(10) == b"cdef"
    assert state.take_buffered() == b""


# ---------------------------------------------------------------- requests


def test_preconditions_are_none_when_empty_but_keep_generation_zero() -> None:
    assert _common.preconditions() is None
    conditions = _common.preconditions(if_generation_match=0)
    assert conditions is not None
    assert conditions.HasField("if_generation_match")
    conditions = _common.preconditions(if_none_match="*", if_match="e1")
    assert conditions == pb.Preconditions(if_none_match="*", if_match="e1")


def test_get_request() -> None:
    request = _common.get_request("b", "k", offset=-10)
    assert request.read_offset == -10
    assert not request.HasField("read_limit")
    assert _common.get_request("b", "k", length=0).HasField("read_limit")
    with pytest.raises(ValueError, match="length"):
        _common.get_request("b", "k", length=-1)


def test_put_spec() -> None:
    spec = _common.put_spec("b", "k", metadata={"a": "1"}, size=0)
    assert spec.HasField("size")
    assert spec.size == 0
    assert dict(spec.metadata) == {"a": "1"}
    assert not _common.put_spec("b", "k").HasField("size")


def test_list_request_page_size_bounds() -> None:
    assert _common.list_request("b", prefix="p/", delimiter="/").page_size == 1000
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="page_size"):
            _common.list_request("b", page_size=bad)


def test_sign_url_arguments() -> None:
    assert _common.signed_method("put") == pb.SIGNED_METHOD_PUT
    assert (_common.url_route("CDN"), _common.url_route(None)) == (pb.URL_ROUTE_CDN, 0)
    assert getattr(_common.url_lifetime(timedelta(minutes=5)), "seconds", None) == 300
    assert _common.url_lifetime(None) is None
    assert getattr(_common.url_lifetime(1.5), "nanos", None) == 500_000_000
    with pytest.raises(ValueError, match="method"):
        _common.signed_method("DELETE")
    with pytest.raises(ValueError, match="positive"):
        _common.url_lifetime(0)


def test_copy_request_replaces_metadata_only_when_asked() -> None:
    assert not _common.copy_request("a", "k", "b", "k2").replace_metadata
    request = _common.copy_request("a", "k", "b", "k2", content_type="text/plain")
    assert request.replace_metadata
    assert request.content_type == "text/plain"
    assert _common.copy_request("a", "k", "b", "k2", metadata={}).replace_metadata


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "text/plain"),
        ("photo.JPG", "image/jpeg"),
        ("backup.tar.gz", "application/gzip"),
        ("no-extension", ""),
    ],
)
def test_guess_content_type(name: str, expected: str) -> None:
    assert _common.guess_content_type(name) == expected


def test_channel_options_allow_two_mib_chunks() -> None:
    options = dict(_common.channel_options())
    assert options["grpc.max_receive_message_length"] >= 4 * 1024 * 1024 + 1024
    assert options["grpc.max_send_message_length"] >= 4 * 1024 * 1024 + 1024

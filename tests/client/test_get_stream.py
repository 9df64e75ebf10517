"""The I/O-free logic of a download (storagegw._streams): the verifier of a Get
stream's chunks and object checksums, alone or sharing a digest across resumed
streams, and the reader state's buffer."""

from __future__ import annotations

import hashlib

import pytest

from storagegw import _crc32c
from storagegw._digests import ObjectDigest
from storagegw._streams import GetStreamVerifier, ReaderState
from storagegw._types import ObjectInfo
from storagegw.errors import ChecksumMismatch, Internal, SizeMismatch
from storagegw.v1 import storage_pb2 as pb
from tests.rpc_calls import crc as native


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

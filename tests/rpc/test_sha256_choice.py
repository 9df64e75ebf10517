"""The bucket's SHA-256 choice over the wire, on every driver: with
sha256 = "on_request" a write gets its object's SHA-256 only when it asks
(PutSpec.compute_sha256) or promises one; with "always" (the default) every
write does. CRC32C is checked and stored either way."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import BACKENDS, RunningGateway, resumable_gateway
from tests.rpc_calls import call_error, crc, get, put, put_messages

SECRET = "sha256-choice-test-secret"
MiB = 1024 * 1024
# A size that takes several chunks, and several parts or GCS chunks in a
# resumable upload's second segment.
SIZE = 9 * MiB + 321

Stub = storage_pb2_grpc.StorageServiceStub


def _stub(running: RunningGateway) -> Iterator[Stub]:
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


@pytest.fixture(params=BACKENDS)
def on_request(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stub]:
    """A stub on a gateway whose default bucket computes SHA-256 only on request."""
    if request.param.endswith("-dedup"):
        pytest.skip("a dedup bucket always computes SHA-256 (its contents are named by it)")
    settings = {"GATEWAY_SHA256": "on_request"}
    with resumable_gateway(request, request.param, tmp_path, SECRET, settings) as running:
        yield from _stub(running)


@pytest.fixture(params=BACKENDS)
def always(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stub]:
    """A stub on a gateway with the default choice, said explicitly."""
    settings = {"GATEWAY_SHA256": "always"}
    with resumable_gateway(request, request.param, tmp_path, SECRET, settings) as running:
        yield from _stub(running)


def _described_everywhere(stub: Stub, key: str, sha256: bytes) -> None:
    """Head, List and Get all describe key with this sha256 (b"": none)."""
    assert stub.Head(pb.HeadRequest(key=key)).object.sha256 == sha256
    (listed,) = stub.List(pb.ListRequest(prefix=key)).objects
    # S3's listing carries no checksums at all; the others carry the object's.
    assert listed.key == key
    assert listed.sha256 == sha256 or not (listed.sha256 or listed.HasField("crc32c"))
    responses, _ = get(stub, key)
    assert responses[0].object.sha256 == sha256


def test_on_request_stores_no_sha256_unless_asked(on_request: Stub) -> None:
    data = os.urandom(SIZE)
    info = put(on_request, "plain", data, with_checksums=False)
    assert (info.size, info.crc32c, info.sha256) == (len(data), crc(data), b"")
    assert info.etag
    _described_everywhere(on_request, "plain", b"")
    assert get(on_request, "plain")[1] == data


def test_on_request_checks_the_object_crc32c_still(on_request: Stub) -> None:
    code, reason, _ = call_error(on_request.Put, _wrong_crc("k"))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    code, reason, _ = call_error(on_request.Head, pb.HeadRequest(key="k"))
    assert reason == "OBJECT_NOT_FOUND"


def _wrong_crc(key: str) -> Iterator[pb.PutRequest]:
    data = os.urandom(1000)
    yield pb.PutRequest(spec=pb.PutSpec(key=key))
    yield pb.PutRequest(chunk=pb.ChecksummedData(content=data, crc32c=crc(data)))
    last = pb.PutRequest(finish_write=True)
    last.object_checksums.crc32c = crc(data + b"!")
    yield last


def test_on_request_computes_sha256_when_the_call_asks(on_request: Stub) -> None:
    data = os.urandom(SIZE)
    spec = pb.PutSpec(key="asked", compute_sha256=True)
    info = put(on_request, "asked", data, spec=spec, with_checksums=False)
    assert info.sha256 == hashlib.sha256(data).digest()
    _described_everywhere(on_request, "asked", info.sha256)


def test_on_request_checks_a_promised_sha256(on_request: Stub) -> None:
    data = os.urandom(SIZE)
    good = hashlib.sha256(data).digest()
    spec = pb.PutSpec(key="promised", expected_checksums=pb.ObjectChecksums(sha256=good))
    assert put(on_request, "promised", data, spec=spec, with_checksums=False).sha256 == good
    wrong = hashlib.sha256(b"other").digest()
    spec = pb.PutSpec(key="wrong", expected_checksums=pb.ObjectChecksums(sha256=wrong))
    code, reason, message = call_error(
        on_request.Put, iter(_messages("wrong", data, spec, with_checksums=False))
    )
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert "sha256" in message
    assert call_error(on_request.Head, pb.HeadRequest(key="wrong"))[1] == "OBJECT_NOT_FOUND"


def test_on_request_refuses_a_late_sha256_it_did_not_compute(on_request: Stub) -> None:
    # The SHA-256 comes with the last message only, after the bytes went by.
    data = os.urandom(3 * MiB)
    code, reason, message = call_error(on_request.Put, iter(_messages("late", data)))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert "compute_sha256" in message
    assert call_error(on_request.Head, pb.HeadRequest(key="late"))[1] == "OBJECT_NOT_FOUND"
    # Asked for up front, the same late SHA-256 is checked and kept.
    spec = pb.PutSpec(key="late", compute_sha256=True)
    assert put(on_request, "late", data, spec=spec).sha256 == hashlib.sha256(data).digest()


def _messages(
    key: str, data: bytes, spec: pb.PutSpec | None = None, *, with_checksums: bool = True
) -> list[pb.PutRequest]:
    return list(put_messages(key, data, spec=spec, with_checksums=with_checksums))


def test_always_computes_sha256_for_every_write(always: Stub) -> None:
    data = os.urandom(SIZE)
    info = put(always, "every", data, with_checksums=False)
    assert info.sha256 == hashlib.sha256(data).digest()
    assert info.crc32c == crc(data)
    _described_everywhere(always, "every", info.sha256)


# ---------------------------------------------------------------- resumable uploads


def _start(stub: Stub, key: str, **spec: object) -> str:
    response = stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key=key, **spec)))  # type: ignore[arg-type]
    return str(response.upload_id)


def _segment(upload_id: str, data: bytes, offset: int, *, finish: bool) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(upload_id=upload_id, write_offset=offset)
    for start in range(offset, len(data), MiB):
        piece = data[start : start + MiB]
        yield pb.PutRequest(
            write_offset=start, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
        )
    if finish:
        last = pb.PutRequest(finish_write=True)
        last.object_checksums.crc32c = crc(data)
        yield last


def _upload_in_two_segments(stub: Stub, key: str, data: bytes, **spec: object) -> pb.ObjectInfo:
    """A resumable upload whose second stream continues from the persisted
    size (the record saved by the first, without or with a SHA-256 state)."""
    upload_id = _start(stub, key, **spec)
    first = stub.Put(_segment(upload_id, data[: 6 * MiB + 7], 0, finish=False))
    assert not first.HasField("object")
    persisted = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size
    done = stub.Put(_segment(upload_id, data, persisted, finish=True))
    assert done.object.size == len(data)
    return done.object


def test_on_request_resumable_upload_without_and_with_sha256(on_request: Stub) -> None:
    data = os.urandom(SIZE)
    info = _upload_in_two_segments(on_request, "r/none", data)
    assert (info.crc32c, info.sha256) == (crc(data), b"")
    _described_everywhere(on_request, "r/none", b"")
    info = _upload_in_two_segments(on_request, "r/asked", data, compute_sha256=True)
    assert info.sha256 == hashlib.sha256(data).digest()
    assert get(on_request, "r/asked")[1] == data


def test_always_resumable_upload_has_sha256(always: Stub) -> None:
    data = os.urandom(SIZE)
    info = _upload_in_two_segments(always, "r/every", data)
    assert info.sha256 == hashlib.sha256(data).digest()

"""Resumable uploads over the wire: StartUpload, Put continuations,
QueryUpload and AbortUpload, on every backend that keeps them."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.core.upload_ids import UploadIds
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import BACKENDS, RunningGateway, backend_env, resumable_gateway, run_gateway
from tests.rpc.resumable_calls import (
    SECRET,
    MiB,
    Stub,
    assert_missing,
    put,
    query,
    segment,
    start,
)
from tests.rpc_calls import call_error, crc, get

# Every backend keeps resumable uploads.
RESUMABLE = BACKENDS
# GCS gateways reach fake-gcs-server through a proxy that fills its gaps
# (tests.conftest.resumable_gateway).


@pytest.fixture(params=RESUMABLE)
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    with resumable_gateway(request, request.param, tmp_path, SECRET) as running:
        yield running


def test_an_upload_in_segments_commits_the_whole_object(stub: Stub) -> None:
    data = os.urandom(13 * MiB + 12345)
    upload_id = start(stub, "big.bin", content_type="application/x-test", metadata={"a": "1"})
    first = put(stub, segment(upload_id, data[: 7 * MiB + 99], 0, finish=False))
    assert not first.HasField("object")
    assert 0 <= first.persisted_size <= 7 * MiB + 99
    status = query(stub, upload_id)
    assert status.persisted_size == first.persisted_size
    assert not status.complete
    assert_missing(stub, "big.bin")  # nothing visible before finish

    done = put(stub, segment(upload_id, data, status.persisted_size, finish=True))
    assert done.object.size == len(data) == done.persisted_size
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert done.object.crc32c == crc(data)
    assert done.object.content_type == "application/x-test"
    assert dict(done.object.metadata) == {"a": "1"}
    assert get(stub, "big.bin")[1] == data

    after = query(stub, upload_id)
    assert after.complete
    assert after.persisted_size == len(data)
    assert after.object.etag == done.object.etag
    # A retry of the last stream after its commit answers with the object.
    again = put(stub, segment(upload_id, data, 0, finish=True))
    assert again.object.etag == done.object.etag
    assert again.object.generation == done.object.generation


def test_bytes_below_the_persisted_size_are_skipped(stub: Stub) -> None:
    data = os.urandom(11 * MiB)
    upload_id = start(stub, "overlap.bin")
    put(stub, segment(upload_id, data[: 9 * MiB], 0, finish=False))
    persisted = query(stub, upload_id).persisted_size
    # Resend from 0: what is already persisted is not written twice.
    done = put(stub, segment(upload_id, data, 0, finish=True))
    assert done.object.size == len(data)
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert persisted <= 9 * MiB


def test_write_offset_past_the_persisted_size_is_refused(stub: Stub) -> None:
    data = os.urandom(3 * MiB)
    upload_id = start(stub, "ahead.bin")
    persisted = query(stub, upload_id).persisted_size
    assert persisted == 0
    code, reason, message = call_error(stub.Put, segment(upload_id, data, MiB, finish=True))
    assert (code, reason) == (grpc.StatusCode.OUT_OF_RANGE, "INVALID_WRITE_OFFSET")
    assert "persisted" in message
    # The upload is untouched and still completes.
    done = put(stub, segment(upload_id, data, 0, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()


def test_a_corrupted_chunk_mid_resume_keeps_the_persisted_prefix(stub: Stub) -> None:
    data = os.urandom(12 * MiB)
    upload_id = start(stub, "corrupt.bin")
    put(stub, segment(upload_id, data[: 6 * MiB], 0, finish=False))
    persisted = query(stub, upload_id).persisted_size
    code, reason, _ = call_error(
        stub.Put, segment(upload_id, data, persisted, finish=True, corrupt_at=10 * MiB)
    )
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert_missing(stub, "corrupt.bin")
    resumed_from = query(stub, upload_id).persisted_size
    assert persisted <= resumed_from <= 10 * MiB
    done = put(stub, segment(upload_id, data, resumed_from, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert get(stub, "corrupt.bin")[1] == data


def test_whole_object_promises_are_checked_at_the_end(stub: Stub) -> None:
    data = os.urandom(2 * MiB + 7)
    wrong = hashlib.sha256(b"something else").digest()
    upload_id = start(stub, "promised.bin", expected_checksums=pb.ObjectChecksums(sha256=wrong))
    code, reason, _ = call_error(stub.Put, segment(upload_id, data, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "CHECKSUM_MISMATCH")
    assert_missing(stub, "promised.bin")
    assert not query(stub, upload_id).complete

    sized = start(stub, "sized.bin", size=len(data) - 1)
    code, reason, _ = call_error(stub.Put, segment(sized, data, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "SIZE_MISMATCH")
    assert_missing(stub, "sized.bin")


@pytest.mark.emulator_gap(
    "gcs",
    "fake-gcs-server ignores preconditions on resumable uploads "
    "(tests/backends/test_gcs_uploads.py shows StartUpload sends them)",
)
def test_preconditions_are_checked_at_commit(stub: Stub) -> None:
    upload_id = start(stub, "create-only.bin", preconditions=pb.Preconditions(if_none_match="*"))
    # Someone else creates the key while the upload is in progress.
    put(stub, segment(start(stub, "create-only.bin"), b"first", 0, finish=True))
    code, reason, _ = call_error(stub.Put, segment(upload_id, b"second", 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED")
    assert get(stub, "create-only.bin")[1] == b"first"


def test_abort_discards_the_upload(stub: Stub) -> None:
    data = os.urandom(3 * MiB)
    upload_id = start(stub, "aborted.bin")
    put(stub, segment(upload_id, data, 0, finish=False))
    response: pb.AbortUploadResponse = stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id))
    assert response.existed
    code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
    code, reason, _ = call_error(stub.Put, segment(upload_id, data, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
    assert_missing(stub, "aborted.bin")
    again: pb.AbortUploadResponse = stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id))
    assert not again.existed


def test_an_empty_object(stub: Stub) -> None:
    upload_id = start(stub, "empty.bin")
    done = put(stub, segment(upload_id, b"", 0, finish=True))
    assert done.object.size == 0
    assert done.object.sha256 == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("backend", ["memory"])
def test_forged_altered_and_expired_ids(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    env = {**backend_env(request, backend), "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        upload_id = start(stub, "target.bin")
        altered = upload_id[:-6] + ("A" if upload_id[-6] != "A" else "B") + upload_id[-5:]
        others = UploadIds(b"another secret of enough length").issue("memory", "default", "x", "h")[
            0
        ]
        for bad in (altered, others, "not-a-token", ""):
            for call, message in (
                (stub.QueryUpload, pb.QueryUploadRequest(upload_id=bad)),
                (stub.AbortUpload, pb.AbortUploadRequest(upload_id=bad)),
            ):
                code, reason, _ = call_error(call, message)
                assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPLOAD_ID")
            code, reason, _ = call_error(stub.Put, segment(bad or "x", b"data", 0, finish=True))
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPLOAD_ID")
        # Made with the gateway's secret, but its lifetime is over.
        past = UploadIds(SECRET.encode(), lifetime_s=60, clock=lambda: time.time() - 3600)
        expired = past.issue("memory", running.gateway.config.default_bucket, "x", "h")[0]
        code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=expired))
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_EXPIRED")


def test_reserved_keys_are_refused(stub: Stub) -> None:
    code, reason, _ = call_error(
        stub.StartUpload, pb.StartUploadRequest(spec=pb.PutSpec(key=".storagegw/uploads/x"))
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_KEY")


def test_a_second_stream_on_a_busy_upload_is_refused(stub: Stub) -> None:
    # More than every backend's persistence unit (local: 32 MiB).
    data = os.urandom(40 * MiB)
    upload_id = start(stub, "busy.bin")
    release = threading.Event()

    def held_open() -> Iterator[pb.PutRequest]:
        yield from segment(upload_id, data[: 39 * MiB], 0, finish=False)
        release.wait(60)

    first = stub.Put.future(held_open())
    try:
        # The first stream holds the upload once some of it is persisted.
        deadline = time.monotonic() + 60
        while query(stub, upload_id).persisted_size == 0:
            assert time.monotonic() < deadline, "the first stream persisted nothing"
        code, reason, _ = call_error(stub.Put, segment(upload_id, data, 0, finish=True))
        assert (code, reason) == (grpc.StatusCode.ABORTED, "UPLOAD_BUSY")
    finally:
        release.set()
    assert not first.result(timeout=60).HasField("object")
    done = put(stub, segment(upload_id, data, query(stub, upload_id).persisted_size, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()


def test_memory_uploads_do_not_survive_a_restart(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = {**backend_env(request, "memory"), "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        upload_id = start(storage_pb2_grpc.StorageServiceStub(channel), "gone.bin")
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")

"""AbortUpload against a stream that is still writing the upload, and against
a finished upload, on every backend that keeps resumable uploads.

An abort wins over a writer: the stream writing the upload through the same
gateway is ended with UPLOAD_NOT_FOUND, and the upload is discarded whether
or not the gateway had noticed that its client went away. A finished upload
is not touched by an abort: it keeps answering with its object.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw import Client, RetryPolicy, UploadNotFound
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, resumable_gateway, run_gateway
from tests.rpc.resumable_calls import MiB, Stub, segment, start
from tests.rpc_calls import call_error

SECRET = "resumable-abort-test-secret"
BACKENDS = ["memory", "local", "s3-moto", "gcs"]
# Bounds on waits for the gateway to reach a state (never reached when a test
# fails); the tests never sleep.
WAIT = 60.0


@pytest.fixture(params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    with resumable_gateway(request, request.param, tmp_path, SECRET) as running:
        yield running


def held_size(gateway: RunningGateway) -> int:
    """Enough to get past the backend's persistence unit (local: 32 MiB; GCS:
    its record follows a 4 MiB chunk once the next one is sent)."""
    return 34 * MiB if gateway.backend_name == "local" else 10 * MiB


def wait_until_persisted(stub: Stub, upload_id: str, held: grpc.Future) -> None:
    """Return once the held stream got part of the upload persisted: it is
    then writing it (QueryUpload changes nothing)."""
    deadline = time.monotonic() + WAIT
    while stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id)).persisted_size == 0:
        assert not held.done(), held.exception()
        assert time.monotonic() < deadline, "the held stream persisted nothing"


def upload_dirs(gateway: RunningGateway) -> list[str]:
    uploads = gateway.data_dir / "default" / "uploads"
    return sorted(os.listdir(uploads)) if uploads.exists() else []


def assert_gone(stub: Stub, gateway: RunningGateway, upload_id: str, key: str) -> None:
    code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
    code, reason, _ = call_error(stub.Head, pb.HeadRequest(key=key))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
    if gateway.backend_name == "local":
        assert upload_dirs(gateway) == []


def test_abort_ends_the_stream_writing_the_upload(stub: Stub, gateway: RunningGateway) -> None:
    upload_id = start(stub, "held.bin")
    release = threading.Event()

    def held_open() -> Iterator[pb.PutRequest]:
        yield from segment(upload_id, os.urandom(held_size(gateway)), 0, finish=False)
        release.wait(WAIT)  # neither finished nor cancelled: still writing

    held = stub.Put.future(held_open())
    try:
        wait_until_persisted(stub, upload_id, held)
        response: pb.AbortUploadResponse = stub.AbortUpload(
            pb.AbortUploadRequest(upload_id=upload_id)
        )
        assert response.existed
        # The held stream was ended by the gateway, not by its client.
        error = held.exception(timeout=WAIT)
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "aborted" in (error.details() or "")
    finally:
        release.set()
    assert_gone(stub, gateway, upload_id, "held.bin")
    # Nothing can continue it; a second abort finds nothing.
    code, reason, _ = call_error(stub.Put, segment(upload_id, b"more", 0, finish=False))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
    again: pb.AbortUploadResponse = stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id))
    assert not again.existed


def test_abort_right_after_the_client_cancelled_its_stream(
    stub: Stub, gateway: RunningGateway
) -> None:
    upload_id = start(stub, "cancelled.bin")
    release = threading.Event()

    def held_open() -> Iterator[pb.PutRequest]:
        yield from segment(upload_id, os.urandom(held_size(gateway)), 0, finish=False)
        release.wait(WAIT)

    held = stub.Put.future(held_open())
    try:
        wait_until_persisted(stub, upload_id, held)
        held.cancel()  # whether or not the gateway noticed yet, the abort wins
        response: pb.AbortUploadResponse = stub.AbortUpload(
            pb.AbortUploadRequest(upload_id=upload_id)
        )
        assert response.existed
    finally:
        release.set()
    assert held.cancelled()
    assert_gone(stub, gateway, upload_id, "cancelled.bin")


def test_aborting_a_finished_upload_changes_nothing(gateway: RunningGateway) -> None:
    data = os.urandom(3 * MiB + 5)
    with Client(gateway.target, timeout=60, retry=RetryPolicy.no_retry()) as client:
        session = client.start_upload("finished.bin", size=len(data))
        info = client.resume_upload(session.upload_id, data)
        assert client.abort_upload(session.upload_id) is False
        status = client.query_upload(session.upload_id)
        assert status.complete
        assert status.object is not None
        assert status.object.etag == info.etag
        assert status.object.sha256 == hashlib.sha256(data).digest()
        assert client.get_bytes("finished.bin") == data
        # Still false, still answering; an unfinished upload is another matter.
        assert client.abort_upload(session.upload_id) is False
        assert client.query_upload(session.upload_id).complete
        other = client.start_upload("unfinished.bin")
        assert client.abort_upload(other.upload_id) is True
        with pytest.raises(UploadNotFound):
            client.query_upload(other.upload_id)


def test_abort_from_another_process_stops_the_local_writer_at_its_next_checkpoint(
    tmp_path: Path,
) -> None:
    # Two gateways on one data directory: each has its own streams, and only
    # the upload's lock on disk (held by the writer) is shared, as between
    # two processes.
    env = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": SECRET}
    unit = 32 * MiB  # the local backend's persistence unit
    data = os.urandom(2 * unit + MiB)
    with (
        run_gateway(env, tmp_path) as writing,
        run_gateway(env, tmp_path) as other,
        grpc.insecure_channel(writing.target) as writing_channel,
        grpc.insecure_channel(other.target) as other_channel,
    ):
        writing.backend_name = other.backend_name = "local"
        stub = storage_pb2_grpc.StorageServiceStub(writing_channel)
        other_stub = storage_pb2_grpc.StorageServiceStub(other_channel)
        upload_id = start(stub, "elsewhere.bin")
        release = threading.Event()

        def held_open() -> Iterator[pb.PutRequest]:
            for message in segment(upload_id, data, 0, finish=False):
                if message.write_offset == unit + 2 * MiB:
                    release.wait(WAIT)  # one checkpoint made, the next not yet
                yield message
            yield pb.PutRequest(finish_write=True)

        held = stub.Put.future(held_open())
        try:
            wait_until_persisted(other_stub, upload_id, held)
            response: pb.AbortUploadResponse = other_stub.AbortUpload(
                pb.AbortUploadRequest(upload_id=upload_id)
            )
            assert response.existed
            # Gone for everyone at once, though its writer still runs.
            for either in (stub, other_stub):
                code, reason, _ = call_error(
                    either.QueryUpload, pb.QueryUploadRequest(upload_id=upload_id)
                )
                assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
        finally:
            release.set()
        error = held.exception(timeout=WAIT)
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "aborted" in (error.details() or "")
        assert_gone(other_stub, other, upload_id, "elsewhere.bin")
        again: pb.AbortUploadResponse = other_stub.AbortUpload(
            pb.AbortUploadRequest(upload_id=upload_id)
        )
        assert not again.existed

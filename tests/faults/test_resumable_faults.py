"""Fault tests of resumable uploads (issue 5) with real gateway processes.

1. kill -9 the gateway mid-upload, start a fresh one on the same
   configuration, resume from the persisted size: the object's sha256 equals
   the source's, and cleanup leaves no upload behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import CLI_PATH, gateway_process
from tests.rpc.resumable_calls import SECRET, put, query, segment, start
from tests.rpc_calls import crc, get

MiB = 1024 * 1024
SOURCE_SIZE = 72 * MiB
SENT_BEFORE_KILL = 56 * MiB

# The backends the kill -9 test runs on.
BACKENDS_KILL = ["local"]


def backend_settings(backend: str, tmp_path: Path) -> dict[str, str]:
    """The gateway's storage settings for backend (both processes share them)."""
    if backend == "local":
        return {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(tmp_path)}
    raise AssertionError(f"no settings for {backend}")


def leftover_uploads(backend: str, tmp_path: Path) -> list[str]:
    """What the backend still holds of resumable uploads."""
    if backend == "local":
        return sorted(str(p) for p in tmp_path.rglob("uploads/*"))
    raise AssertionError(f"no leftover check for {backend}")


def cleanup(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))}
    return subprocess.run(
        [CLI_PATH, "cleanup", "--older-than", "0.001"],
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for(condition: object, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


@pytest.mark.parametrize("backend", BACKENDS_KILL)
def test_kill_9_mid_upload_then_resume_on_a_fresh_gateway(tmp_path: Path, backend: str) -> None:
    data = os.urandom(SOURCE_SIZE)
    settings = {**backend_settings(backend, tmp_path), "STORAGE_URL_SECRET": SECRET}
    hold = threading.Event()

    with (
        gateway_process(tmp_path, **settings) as first,
        grpc.insecure_channel(first.target) as writing,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(writing)
        upload_id = start(stub, "killed.bin", content_type="application/x-test")

        def unfinished() -> Iterator[pb.PutRequest]:
            yield pb.PutRequest(upload_id=upload_id, write_offset=0)
            for offset in range(0, SENT_BEFORE_KILL, MiB):
                piece = data[offset : offset + MiB]
                yield pb.PutRequest(
                    write_offset=offset,
                    chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece)),
                )
            hold.wait(120)  # the stream stays open, never finished

        call = stub.Put.future(unfinished())
        try:
            with grpc.insecure_channel(first.target) as querying:
                observer = storage_pb2_grpc.StorageServiceStub(querying)
                wait_for(
                    lambda: query(observer, upload_id).persisted_size > 0,
                    "a persisted checkpoint",
                )
            first.process.kill()
            first.process.wait(30)
        finally:
            hold.set()
        assert call.exception(60) is not None  # the stream died with the gateway

    with (
        gateway_process(tmp_path, **settings) as second,
        grpc.insecure_channel(second.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        status = query(stub, upload_id)
        assert not status.complete
        assert 0 < status.persisted_size <= SENT_BEFORE_KILL
        done = put(stub, segment(upload_id, data, status.persisted_size, finish=True))
        assert done.object.size == SOURCE_SIZE
        assert done.object.content_type == "application/x-test"
        stored = get(stub, "killed.bin")[1]
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
        assert query(stub, upload_id).complete

    assert leftover_uploads(backend, tmp_path) != []  # the complete upload's record
    result = cleanup(settings)
    assert result.returncode == 0, result.stderr
    assert "default: aborted 0 incomplete upload(s)" in result.stdout
    assert leftover_uploads(backend, tmp_path) == []

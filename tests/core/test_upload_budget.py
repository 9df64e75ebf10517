"""What unfinished resumable uploads hold per bucket: counted, shown to the
operator (the cleanup pass's log line, `storagegw cleanup`), and capped by
GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES, on the memory and local backends."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import CLI_PATH, RunningGateway, run_gateway
from tests.rpc_calls import call_error, crc

MiB = 1024 * 1024
CAP = 3 * MiB
Stub = storage_pb2_grpc.StorageServiceStub


@pytest.fixture(params=["memory", "local"])
def capped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    env = {
        "STORAGE_BACKEND": request.param,
        "STORAGE_URL_SECRET": "upload-budget-test-secret",
        "GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES": str(CAP),
    }
    with run_gateway(env, tmp_path) as running:
        running.backend_name = request.param
        yield running


@pytest.fixture
def stub(capped: RunningGateway) -> Iterator[Stub]:
    with grpc.insecure_channel(capped.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def start(stub: Stub, key: str, size: int | None = None) -> str:
    spec = pb.PutSpec(key=key) if size is None else pb.PutSpec(key=key, size=size)
    response: pb.StartUploadResponse = stub.StartUpload(pb.StartUploadRequest(spec=spec))
    return response.upload_id


def segment(upload_id: str, data: bytes, offset: int, finish: bool) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(upload_id=upload_id, write_offset=offset)
    for at in range(offset, len(data), MiB):
        piece = data[at : at + MiB]
        yield pb.PutRequest(
            write_offset=at, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
        )
    if finish:
        yield pb.PutRequest(finish_write=True)


def persisted(stub: Stub, upload_id: str) -> int:
    response = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id))
    return int(response.persisted_size)


def test_the_cap_refuses_new_uploads_and_further_writes(stub: Stub) -> None:
    abandoned = start(stub, "abandoned.bin")
    stub.Put(segment(abandoned, os.urandom(2 * MiB), 0, finish=False))  # then left alone

    # A declared size that would pass the cap is refused at the start.
    code, reason, message = call_error(
        stub.StartUpload, pb.StartUploadRequest(spec=pb.PutSpec(key="big.bin", size=2 * MiB))
    )
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED")
    assert "GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES" in message
    assert "unfinished" in message

    # Without a size, the writes that would pass the cap are refused.
    data = os.urandom(2 * MiB)
    second = start(stub, "second.bin")
    code, reason, message = call_error(stub.Put, segment(second, data, 0, finish=True))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED")
    assert f"cap of {CAP} bytes" in message

    # Aborting the abandoned upload frees its share: the second completes.
    assert stub.AbortUpload(pb.AbortUploadRequest(upload_id=abandoned)).existed
    done = stub.Put(segment(second, data, persisted(stub, second), finish=True))
    assert done.object.size == len(data)
    # Finished uploads hold nothing: a new one may start again.
    start(stub, "third.bin", size=2 * MiB)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_cleanup_pass_logs_what_unfinished_uploads_hold(
    capped: RunningGateway, stub: Stub
) -> None:
    upload_id = start(stub, "held.bin")
    stub.Put(segment(upload_id, os.urandom(MiB + 5), 0, finish=False))
    lines = Lines()
    logger = logging.getLogger("storagegw")
    logger.addHandler(lines)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        capped.run(capped.gateway.cleanup_once())
    finally:
        logger.removeHandler(lines)
        logger.setLevel(old_level)
    (line,) = [m for m in lines.messages if "unfinished upload" in m]
    assert line.startswith("bucket default: 1 unfinished upload(s) hold ")
    held = int(line.split(" hold ")[1].split()[0])
    assert MiB <= held < 2 * MiB  # memory keeps whole checkpoints; local, a header too
    assert line.endswith(f"(cap {CAP} bytes)")


def test_storagegw_cleanup_prints_what_unfinished_uploads_hold(tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": "upload-budget-test-secret"}
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        for key in ("one.bin", "two.bin"):
            stub.Put(segment(start(stub, key), os.urandom(MiB), 0, finish=False))
        done = start(stub, "done.bin")
        stub.Put(segment(done, b"finished", 0, finish=True))
    result = subprocess.run(
        [CLI_PATH, "cleanup"],
        env={**os.environ, **env, "STORAGE_BASE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "unfinished upload" in x]
    assert line.startswith("bucket default: 2 unfinished upload(s) hold ")
    assert line.endswith("(no cap)")


def test_a_bucket_cap_in_the_config_file_holds_for_that_bucket_only(tmp_path: Path) -> None:
    """[buckets.NAME] max_unfinished_upload_bytes caps that bucket; another
    bucket without a cap (and no gateway-wide one) takes what it is given."""
    config = tmp_path / "buckets.toml"
    config.write_text(
        f"default_bucket = 'capped'\n[buckets.capped]\nbackend = 'memory'\n"
        f"max_unfinished_upload_bytes = {CAP}\n[buckets.open]\nbackend = 'memory'\n"
    )
    env = {"GATEWAY_CONFIG": str(config), "STORAGE_URL_SECRET": "upload-budget-test-secret"}
    with (
        run_gateway(env, tmp_path) as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, reason, message = call_error(
            stub.StartUpload,
            pb.StartUploadRequest(spec=pb.PutSpec(bucket="capped", key="big", size=CAP + 1)),
        )
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED")
        assert "max_unfinished_upload_bytes" in message
        response = stub.StartUpload(
            pb.StartUploadRequest(spec=pb.PutSpec(bucket="open", key="big", size=CAP + 1))
        )
        assert response.upload_id

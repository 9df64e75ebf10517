"""Resumable uploads through a gateway on the real fake-gcs-server, with no
proxy smoothing over what the emulator does differently from GCS.

fake-gcs-server completes an upload session when asked for its status
(`Content-Range: bytes */*`). A fresh upload needs no such question: the
client starts its first stream at 0 without QueryUpload, and the gateway's
first resume of a session it never sent a byte to does not ask. A session the
store completed early gives a clear status, not INTERNAL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw import AsyncClient, Client
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import CLI_PATH, RunningGateway, gcs_env, run_gateway
from tests.fake_gcs_server import FakeGcsServer
from tests.gcs_proxy import RecordingProxy
from tests.log_records import AccessLog
from tests.rpc_calls import call_error, crc

MiB = 1024 * 1024
CHUNK = 4 * MiB  # gcs_env's STORAGE_GCS_CHUNK_SIZE


@pytest.fixture
def env(fake_gcs: FakeGcsServer, gcs_key_file: Path) -> dict[str, str]:
    fake_gcs.reset()
    return gcs_env(fake_gcs, fake_gcs.new_bucket(), gcs_key_file)


@pytest.fixture
def direct(env: dict[str, str], tmp_path: Path) -> Iterator[RunningGateway]:
    """A gateway talking to fake-gcs-server itself."""
    with run_gateway(env, tmp_path) as running:
        yield running


def cli(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI_PATH, "--target", target, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_put_of_32_mib_reads_back(direct: RunningGateway, tmp_path: Path) -> None:
    data = os.urandom(32 * MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    put = cli(direct.target, "put", str(source), "media/big.bin")
    assert put.returncode == 0, put.stderr
    copy = tmp_path / "copy.bin"
    got = cli(direct.target, "get", "media/big.bin", str(copy))
    assert got.returncode == 0, got.stderr
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(data).digest()
    # Over the resumable threshold: it did go through an upload session.
    resumed = cli(direct.target, "put", "--resume", str(source), "media/again.bin")
    assert resumed.returncode == 0, resumed.stderr
    assert "upload id:" in resumed.stderr


def test_a_fresh_upload_asks_nobody_for_its_status(
    env: dict[str, str], tmp_path: Path, access_log: AccessLog
) -> None:
    data = os.urandom(2 * CHUNK + 12345)
    with RecordingProxy(env["STORAGE_EMULATOR_HOST"]) as proxy:
        proxied = {**env, "STORAGE_EMULATOR_HOST": proxy.endpoint}
        with run_gateway(proxied, tmp_path) as running, Client(running.target) as client:
            info = client.put_file("fresh.bin", data, resumable=True)
            assert info.sha256 == hashlib.sha256(data).digest()
            assert client.get_bytes("fresh.bin") == data

            async def put_async() -> None:
                async with AsyncClient(running.target) as aclient:
                    await aclient.put_file("fresh-async.bin", data, resumable=True)

            asyncio.run(put_async())
            assert client.get_bytes("fresh-async.bin") == data
        status_queries = [
            r
            for r in proxy.matching("PUT", "/upload/")
            if r.headers.get("content-range") == "bytes */*" and r.size == 0
        ]
    assert status_queries == []
    methods = [getattr(r, "rpc_method", None) for r in access_log.records]
    assert methods.count("StartUpload") == 2
    assert "QueryUpload" not in methods


def test_a_session_the_emulator_completed_early_is_a_clear_error(
    direct: RunningGateway,
) -> None:
    data = os.urandom(3 * CHUNK)
    with grpc.insecure_channel(direct.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        started = stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key="early.bin")))
        upload_id = started.upload_id

        def segment(start: int, end: int, finish: bool) -> Iterator[pb.PutRequest]:
            yield pb.PutRequest(upload_id=upload_id, write_offset=start)
            for at in range(start, end, MiB):
                piece = data[at : min(at + MiB, end)]
                yield pb.PutRequest(
                    write_offset=at, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
                )
            if finish:
                yield pb.PutRequest(finish_write=True)

        first = stub.Put(segment(0, CHUNK + MiB, finish=False))
        assert first.persisted_size == CHUNK
        # The next stream makes the gateway ask the session where it stands,
        # and the emulator completes it with what it holds.
        code, reason, message = call_error(stub.Put, segment(CHUNK, len(data), finish=True))
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")
        assert "start a new one" in message

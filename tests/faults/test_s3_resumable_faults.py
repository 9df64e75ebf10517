"""Resumable uploads on S3 through faults, with real processes and servers:
a gateway killed with SIGKILL mid-upload, a second replica finishing what
the first started, and the S3 server becoming unreachable mid-stream."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import S3_TEST_BUCKET, backend_env, gateway_process, run_gateway
from tests.moto_server import MotoServer
from tests.rpc.resumable_calls import SECRET, MiB, Stub, put, query, segment, start
from tests.rpc_calls import call_error, crc, error_reason, get
from tests.servers import make_bucket
from tests.tcp_proxy import TcpProxy

SIZE = 40 * MiB
PART = 5 * MiB  # STORAGE_S3_PART_SIZE in backend_env


class Stream:
    """A Put stream continuing upload_id with data[offset:], in 1 MiB chunks,
    that stays open without finish_write until release() (or finishes when
    finish is set)."""

    def __init__(self, upload_id: str, data: bytes, offset: int = 0, *, finish: bool) -> None:
        self._upload_id = upload_id
        self._data = data
        self._offset = offset
        self._finish = finish
        self._released = threading.Event()
        self.sent_all = threading.Event()

    def messages(self) -> Iterator[pb.PutRequest]:
        yield pb.PutRequest(upload_id=self._upload_id, write_offset=self._offset)
        for position in range(self._offset, len(self._data), MiB):
            piece = self._data[position : position + MiB]
            yield pb.PutRequest(
                write_offset=position, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
            )
        self.sent_all.set()
        if self._finish:
            yield pb.PutRequest(finish_write=True)
        else:
            self._released.wait(120)

    def release(self) -> None:
        self._released.set()


def wait_for_persisted(stub: Stub, upload_id: str, deadline_s: float = 60) -> int:
    """Poll QueryUpload until some bytes are persisted; how many."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        persisted = query(stub, upload_id).persisted_size
        if persisted > 0:
            return persisted
    raise AssertionError(f"nothing was persisted within {deadline_s} s")


def failure_of(call: grpc.Future) -> grpc.RpcError:
    try:
        call.result(timeout=120)
    except grpc.RpcError as error:
        return error
    raise AssertionError("the Put succeeded but was expected to fail")


def resume_and_check(stub: Stub, upload_id: str, key: str, data: bytes) -> None:
    persisted = query(stub, upload_id).persisted_size
    assert 0 < persisted <= len(data)
    assert persisted % PART == 0  # completed parts only
    done = put(stub, segment(upload_id, data, persisted, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert hashlib.sha256(get(stub, key)[1]).digest() == hashlib.sha256(data).digest()


@pytest.fixture(params=["s3-moto", "s3-ceph"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return {**backend_env(request, request.param), "STORAGE_URL_SECRET": SECRET}


def test_gateway_killed_mid_upload_resumes_in_a_fresh_process(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    with (
        gateway_process(tmp_path, **env) as first,
        grpc.insecure_channel(first.target) as channel,
        grpc.insecure_channel(first.target) as control,
    ):
        upload_id = start(storage_pb2_grpc.StorageServiceStub(channel), "killed.bin")
        stream = Stream(upload_id, data, finish=False)
        call = storage_pb2_grpc.StorageServiceStub(channel).Put.future(stream.messages())
        try:
            wait_for_persisted(storage_pb2_grpc.StorageServiceStub(control), upload_id)
            first.process.kill()
            first.process.wait(30)
            code, _ = error_reason(failure_of(call))
            assert code == grpc.StatusCode.UNAVAILABLE
        finally:
            stream.release()
    with (
        gateway_process(tmp_path, **env) as second,
        grpc.insecure_channel(second.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        code, reason, _ = call_error(stub.Head, pb.HeadRequest(key="killed.bin"))
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
        resume_and_check(stub, upload_id, "killed.bin", data)


def test_one_replica_starts_another_finishes(env: dict[str, str], tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with (
        gateway_process(tmp_path / "a", **env) as a,
        gateway_process(tmp_path / "b", **env) as b,
        grpc.insecure_channel(a.target) as to_a,
        grpc.insecure_channel(b.target) as to_b,
    ):
        stub_a = storage_pb2_grpc.StorageServiceStub(to_a)
        stub_b = storage_pb2_grpc.StorageServiceStub(to_b)
        upload_id = start(stub_a, "replicated.bin")
        stream = Stream(upload_id, data, finish=False)
        call = stub_a.Put.future(stream.messages())
        try:
            # B sees what A persisted: the state is in S3, not in A.
            wait_for_persisted(stub_b, upload_id)
            a.process.kill()
            a.process.wait(30)
            failure_of(call)
        finally:
            stream.release()
        resume_and_check(stub_b, upload_id, "replicated.bin", data)


def test_s3_unreachable_mid_stream_then_back_resumes(tmp_path: Path) -> None:
    # Killing moto itself would lose the multipart upload: moto keeps all its
    # state in memory and has no persistence across restarts. The S3 server
    # going away and coming back is therefore a TCP relay between the gateway
    # and moto that drops every connection and refuses new ones, then
    # listens again: to the gateway, exactly a dead then restarted S3.
    moto = MotoServer().start()  # a server of its own: this test cuts it off
    proxy = TcpProxy(f"127.0.0.1:{moto.port}")
    try:
        make_bucket(moto.endpoint, moto.access_key, moto.secret_key, S3_TEST_BUCKET)
        env = {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": S3_TEST_BUCKET,
            "STORAGE_S3_ENDPOINT": f"http://{proxy.target}",
            "STORAGE_S3_ACCESS_KEY": moto.access_key,
            "STORAGE_S3_SECRET_KEY": moto.secret_key,
            "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_ADDRESSING_STYLE": "path",
            "STORAGE_S3_PART_SIZE": "5MiB",
            "STORAGE_URL_SECRET": SECRET,
        }
        data = os.urandom(SIZE)
        with (
            run_gateway(env, tmp_path) as running,
            grpc.insecure_channel(running.target) as channel,
            grpc.insecure_channel(running.target) as control,
        ):
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            upload_id = start(stub, "cut-off.bin")
            stream = Stream(upload_id, data, finish=True)
            gate = threading.Event()

            def gated() -> Iterator[pb.PutRequest]:
                for number, message in enumerate(stream.messages()):
                    if number == 12:  # 11 MiB sent: past two parts
                        gate.wait(60)
                    yield message

            call = stub.Put.future(gated())
            try:
                persisted = wait_for_persisted(
                    storage_pb2_grpc.StorageServiceStub(control), upload_id
                )
                proxy.refuse()
            finally:
                gate.set()
            code, reason = error_reason(failure_of(call))
            assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE")

            proxy.restore()
            head = call_error(stub.Head, pb.HeadRequest(key="cut-off.bin"))[:2]
            assert head == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")  # nothing half-visible
            assert query(stub, upload_id).persisted_size >= persisted
            resume_and_check(stub, upload_id, "cut-off.bin", data)
    finally:
        proxy.close()
        moto.stop()

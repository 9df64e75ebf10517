"""Fault test 1 on GCS (issue 5): kill -9 a gateway process mid-upload,
start a fresh one on the same configuration, and resume from what GCS and
the upload's record hold."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import gateway_process, gcs_env
from tests.fake_gcs_server import FakeGcsServer
from tests.gcs_proxy import RecordingProxy
from tests.rpc.resumable_calls import SECRET, segment
from tests.rpc_calls import get

MiB = 1024 * 1024
SIZE = 40 * MiB + 4321


def test_kill_9_mid_upload_then_resume_on_a_fresh_process(
    fake_gcs: FakeGcsServer, gcs_key_file: Path, tmp_path: Path
) -> None:
    fake_gcs.reset()
    bucket = fake_gcs.new_bucket()
    data = os.urandom(SIZE)
    release = threading.Event()

    def unfinished(upload_id: str) -> Iterator[pb.PutRequest]:
        # The whole object but no finish_write: the stream stays open.
        yield from segment(upload_id, data, 0, finish=False)
        release.wait(120)

    # The proxy answers session status queries as GCS does (the emulator
    # finalizes the upload instead; see tests/backends/test_gcs_uploads.py).
    with RecordingProxy(fake_gcs.endpoint) as proxy:
        proxy.emulate_sessions = proxy.check_upload_hash = True
        env = {
            **gcs_env(fake_gcs, bucket, gcs_key_file),
            "STORAGE_EMULATOR_HOST": proxy.endpoint,
            "STORAGE_URL_SECRET": SECRET,
        }
        try:
            with (
                gateway_process(tmp_path, **env) as first,
                grpc.insecure_channel(first.target) as channel,
                grpc.insecure_channel(first.target) as watcher,
            ):
                stub = storage_pb2_grpc.StorageServiceStub(channel)
                started = stub.StartUpload(
                    pb.StartUploadRequest(spec=pb.PutSpec(key="big.bin")), timeout=30
                )
                upload_id = started.upload_id
                call = stub.Put.future(unfinished(upload_id))
                observer = storage_pb2_grpc.StorageServiceStub(watcher)
                deadline = time.monotonic() + 120
                persisted = 0
                while persisted == 0:
                    assert time.monotonic() < deadline, "nothing was persisted in 120 s"
                    persisted = observer.QueryUpload(
                        pb.QueryUploadRequest(upload_id=upload_id), timeout=30
                    ).persisted_size
                first.process.kill()
                first.process.wait(30)
                assert isinstance(call.exception(timeout=60), grpc.RpcError)
            assert fake_gcs.object_names(bucket, "big.bin") == []

            with (
                gateway_process(tmp_path, **env) as second,
                grpc.insecure_channel(second.target) as channel,
            ):
                stub = storage_pb2_grpc.StorageServiceStub(channel)
                status = stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id), timeout=30)
                assert not status.complete
                assert persisted <= status.persisted_size < SIZE
                done = stub.Put(
                    segment(upload_id, data, status.persisted_size, finish=True), timeout=120
                )
                source = hashlib.sha256(data).digest()
                assert done.object.sha256 == source
                assert hashlib.sha256(get(stub, "big.bin")[1]).digest() == source
        finally:
            release.set()

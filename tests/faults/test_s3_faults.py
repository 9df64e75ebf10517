"""The S3 server going away under the gateway: a clear UNAVAILABLE, nothing stored."""

from __future__ import annotations

import os
import threading

import grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import S3_TEST_BUCKET, run_gateway, signal_first_write
from tests.moto_server import MotoServer
from tests.rpc_calls import CHUNK, error_reason
from tests.servers import make_bucket


def test_s3_killed_mid_put_is_unavailable(tmp_path):
    moto = MotoServer().start()  # a server of its own: this test kills it
    try:
        make_bucket(moto.endpoint, moto.access_key, moto.secret_key, S3_TEST_BUCKET)
        env = {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": S3_TEST_BUCKET,
            "STORAGE_S3_ENDPOINT": moto.endpoint,
            "STORAGE_S3_ACCESS_KEY": moto.access_key,
            "STORAGE_S3_SECRET_KEY": moto.secret_key,
            "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_PART_SIZE": "5MiB",
        }
        with (
            run_gateway(env, tmp_path) as running,
            grpc.insecure_channel(running.target) as channel,
        ):
            written = signal_first_write(running)
            go_on = threading.Event()

            def messages():
                yield pb.PutRequest(spec=pb.PutSpec(key="interrupted"))
                yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
                go_on.wait(60)
                for _ in range(8):  # past one part: the gateway must now talk to S3
                    yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
                yield pb.PutRequest(finish_write=True)

            stub = storage_pb2_grpc.StorageServiceStub(channel)
            call = stub.Put.future(messages())
            assert written.wait(30)
            moto.stop()
            go_on.set()
            try:
                call.result(timeout=120)
                failure = None
            except grpc.RpcError as error:
                failure = error
            assert failure is not None, "the Put succeeded with its S3 server gone"
            code, reason = error_reason(failure)
            assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE")
            assert moto.secret_key not in failure.details()
    finally:
        moto.stop()

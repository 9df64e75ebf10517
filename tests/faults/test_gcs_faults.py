"""GCS going away or a client giving up mid-transfer, and a 1 GiB object
through a gateway process with flat memory."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.big_data import BIG_DATA
from tests.conftest import gateway_process, gcs_env, run_gateway, signal_first_write
from tests.fake_gcs_server import FakeGcsServer
from tests.log_records import AccessLog
from tests.rpc_calls import CHUNK, crc, error_reason

MIB = 1024 * 1024
GIB = 1024 * MIB


def test_gcs_killed_mid_put_is_unavailable_and_stores_nothing(
    tmp_path: Path, gcs_key_file: Path
) -> None:
    # A server of its own (this test kills it), keeping objects on disk so
    # that, restarted, it shows what was stored.
    server = FakeGcsServer(data_dir=tmp_path / "gcs").start()
    try:
        bucket = server.new_bucket()
        env = {
            **gcs_env(server, bucket, gcs_key_file),
            # The smallest chunks: the upload session is under way after the first write.
            "STORAGE_GCS_CHUNK_SIZE": "256KiB",
            "STORAGE_GCS_RETRY_DEADLINE": "2s",  # give up retrying soon
        }
        with (
            run_gateway(env, tmp_path) as running,
            grpc.insecure_channel(running.target) as channel,
        ):
            written = signal_first_write(running)
            go_on = threading.Event()

            def messages() -> Iterator[pb.PutRequest]:
                yield pb.PutRequest(spec=pb.PutSpec(key="interrupted"))
                yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
                go_on.wait(60)
                for _ in range(4):
                    yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
                yield pb.PutRequest(finish_write=True)

            stub = storage_pb2_grpc.StorageServiceStub(channel)
            call = stub.Put.future(messages())
            assert written.wait(30)
            port = server.port
            server.kill()
            go_on.set()
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=120)
            assert error_reason(caught.value) == (
                grpc.StatusCode.UNAVAILABLE,
                "BACKEND_UNAVAILABLE",
            )
            assert "PRIVATE KEY" not in caught.value.details()
            server.stop()
            server.start(port=port)
            assert server.object_names(bucket) == []
    finally:
        server.stop()


def test_cancelled_put_leaves_no_object_in_gcs(
    fake_gcs: FakeGcsServer, gcs_key_file: Path, tmp_path: Path, access_log: AccessLog
) -> None:
    fake_gcs.reset()
    bucket = fake_gcs.new_bucket()
    env = {**gcs_env(fake_gcs, bucket, gcs_key_file), "STORAGE_GCS_CHUNK_SIZE": "256KiB"}
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        written = signal_first_write(running)
        release = threading.Event()

        def messages() -> Iterator[pb.PutRequest]:
            yield pb.PutRequest(spec=pb.PutSpec(key="cancelled"))
            for _ in range(3):
                yield pb.PutRequest(chunk=pb.ChecksummedData(content=os.urandom(CHUNK)))
            release.wait(30)  # hold the stream open until the test cancels it

        stub = storage_pb2_grpc.StorageServiceStub(channel)
        future = stub.Put.future(messages())
        assert written.wait(30)
        future.cancel()
        record = access_log.wait("Put")  # the handler, and so its abort, is done
        release.set()
        assert record.status in ("CANCELLED", "INVALID_ARGUMENT")
        assert fake_gcs.object_names(bucket) == []


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def _blocks(total: int, sha: hashlib._Hash) -> Iterator[bytes]:
    """total bytes of generated data in CHUNK blocks, hashed as they go."""
    seed = os.urandom(CHUNK)
    for index in range(total // CHUNK):
        block = index.to_bytes(8, "big") + seed[8:]
        sha.update(block)
        yield block


@BIG_DATA
@pytest.mark.timeout(900)
def test_one_gib_put_and_get_with_flat_gateway_memory(tmp_path: Path, gcs_key_file: Path) -> None:
    limit_mib = 300  # fixed, whatever the object's size
    with FakeGcsServer() as server:  # its own: 1 GiB in its memory goes with it
        bucket = server.new_bucket()
        env = {
            **gcs_env(server, bucket, gcs_key_file),
            # fake-gcs-server copies all it holds on every chunk: fewer, larger ones.
            "STORAGE_GCS_CHUNK_SIZE": "32MiB",
        }
        with gateway_process(tmp_path, **env) as gateway:
            with grpc.insecure_channel(gateway.target) as channel:
                stub = storage_pb2_grpc.StorageServiceStub(channel)
                sent = hashlib.sha256()

                def messages() -> Iterator[pb.PutRequest]:
                    yield pb.PutRequest(spec=pb.PutSpec(key="big", size=GIB))
                    for block in _blocks(GIB, sent):
                        yield pb.PutRequest(
                            chunk=pb.ChecksummedData(content=block, crc32c=crc(block))
                        )
                    last = pb.PutRequest(finish_write=True)
                    last.object_checksums.sha256 = sent.digest()
                    yield last

                info = stub.Put(messages(), timeout=600).object
                assert (info.size, info.sha256) == (GIB, sent.digest())
                after_put = _vm_hwm_kib(gateway.process.pid)
                received = hashlib.sha256()
                size = 0
                for response in stub.Get(pb.GetRequest(key="big"), timeout=600):
                    received.update(response.chunk.content)
                    size += len(response.chunk.content)
                assert (size, received.digest()) == (GIB, sent.digest())
            peak = _vm_hwm_kib(gateway.process.pid)
        print(
            f"\ngateway peak RSS: {after_put // 1024} MiB after Put, {peak // 1024} MiB after Get"
        )
        assert peak < limit_mib * 1024, f"gateway peak RSS {peak // 1024} MiB"

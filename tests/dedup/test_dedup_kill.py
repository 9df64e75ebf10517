"""kill -9 of a gateway process writing into a dedup bucket (local), as its
Put commits: wherever the kill lands (before the temp object is committed,
between the bytes and the reference, after), the key then holds the whole
object or nothing, never a reference without its bytes, and one sweep past
the grace period leaves in the store exactly the contents still named."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from gateway import config as config_module
from gateway.layers.dedup import DedupBackend
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import gateway_process
from tests.drivers import get, list_all
from tests.rpc_calls import crc

MiB = 1024 * 1024


def _messages(key: str, data: bytes, sent: list[int]) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(spec=pb.PutSpec(key=key, size=len(data)))
    for offset in range(0, len(data), MiB):
        piece = data[offset : offset + MiB]
        yield pb.PutRequest(
            write_offset=offset, chunk=pb.ChecksummedData(content=piece, crc32c=crc(piece))
        )
    last = pb.PutRequest(finish_write=True)
    last.object_checksums.sha256 = hashlib.sha256(data).digest()
    sent.append(1)
    yield last


async def test_kill_9_as_a_put_commits(tmp_path: Path) -> None:
    settings = {
        "STORAGE_BACKEND": "local",
        "STORAGE_DEDUP": "true",
        "STORAGE_BASE_PATH": str(tmp_path),
        "GATEWAY_DEDUP_SWEEP_INTERVAL": "0",
    }
    kept, killed = os.urandom(3 * MiB), os.urandom(24 * MiB)
    with (
        gateway_process(tmp_path, **settings) as gateway,
        grpc.insecure_channel(gateway.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        sent: list[int] = []
        stub.Put(_messages("kept", kept, []))
        call = stub.Put.future(_messages("killed", killed, sent))
        deadline = time.monotonic() + 60
        while not sent:  # the last message handed to gRPC: the commit is near
            assert time.monotonic() < deadline, "the Put never sent its last message"
        gateway.process.kill()
        gateway.process.wait(30)
        call.exception(60)  # answered or not, the gateway is gone

    config = config_module.load(settings)
    backend = config.buckets[config.default_bucket].build()
    assert isinstance(backend, DedupBackend)
    try:
        assert await get(backend, "kept") == kept
        keys, _ = await list_all(backend)
        if "killed" in keys:
            assert await get(backend, "killed") == killed
        await backend.collect_garbage(now=time.time() + 7200)
        stored, _ = await list_all(backend.inner, prefix=".cas/")
        named = {hashlib.sha256(kept).hexdigest()}
        if "killed" in keys:
            named.add(hashlib.sha256(killed).hexdigest())
        assert {key.rsplit("/", 1)[1] for key in stored} == named  # blobs and markers only
        assert not [key for key in stored if key.startswith(".cas/tmp/")]
    finally:
        await backend.close()

"""A 1 GiB object through a gateway process, Put then Get, with the process's
peak memory (VmHWM) flat in the object's size: no path holds a whole object.

Each backend first moves a 64 MiB object, then the 1 GiB one; the peak may
not grow by more than a few parts between the two, and stays far below the
object. The bytes are generated as they are sent and hashed as they come
back, so the test process holds no whole object either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import grpc
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.big_data import BIG_DATA
from tests.conftest import backend_env, gateway_process

MIB = 1024 * 1024
CHUNK = MIB
SMALL = 64 * MIB
LARGE = 1024 * MIB
# What the peak may grow from the 64 MiB transfer to the 1 GiB one: a few
# parts' worth (S3: concurrency + 1 parts of 8 MiB in flight).
MAX_GROWTH = 64 * MIB
MAX_PEAK = 400 * MIB


def _block(index: int) -> bytes:
    # Distinct 1 MiB blocks (a repeated block could hide a reordering bug).
    seed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    return seed * (CHUNK // len(seed))


def _put_messages(key: str, size: int, sha: hashlib._Hash) -> Iterator[pb.PutRequest]:
    yield pb.PutRequest(spec=pb.PutSpec(key=key, size=size))
    for index in range(size // CHUNK):
        block = _block(index)
        sha.update(block)
        crc = google_crc32c.value(block)
        yield pb.PutRequest(chunk=pb.ChecksummedData(content=block, crc32c=crc))
    last = pb.PutRequest(finish_write=True)
    last.object_checksums.sha256 = sha.digest()
    yield last


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _round_trip(stub: storage_pb2_grpc.StorageServiceStub, key: str, size: int) -> None:
    sent = hashlib.sha256()
    info = stub.Put(_put_messages(key, size, sent), timeout=600).object
    assert info.size == size
    assert info.sha256 == sent.digest()
    received = hashlib.sha256()
    count = 0
    for response in stub.Get(pb.GetRequest(key=key), timeout=600):
        received.update(response.chunk.content)
        count += len(response.chunk.content)
    assert count == size
    assert received.digest() == sent.digest()


@BIG_DATA
@pytest.mark.parametrize("backend", ["local", "s3-moto", "s3-ceph"])
def test_1gib_put_and_get_with_flat_memory(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    env = backend_env(request, backend)
    env.pop("STORAGE_S3_PART_SIZE", None)  # the default part size, as in production
    options = [("grpc.max_receive_message_length", 8 * MIB)]
    with (
        gateway_process(tmp_path, **env) as gateway,
        grpc.insecure_channel(gateway.target, options=options) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        _round_trip(stub, "warm-up", SMALL)
        after_small = _peak_rss(gateway.process.pid)
        _round_trip(stub, "large", LARGE)
        after_large = _peak_rss(gateway.process.pid)
    print(
        f"\n{backend}: gateway peak RSS {after_small / MIB:.0f} MiB after 64 MiB, "
        f"{after_large / MIB:.0f} MiB after 1 GiB"
    )
    assert after_large - after_small <= MAX_GROWTH, (after_small, after_large)
    assert after_large <= MAX_PEAK, after_large

"""Load: 64 concurrent 64 MiB resumable uploads with random client aborts and
resumes, through a gateway process on local disk and on S3 (moto).

Every upload is cut short one to three times at random points (the client
cancels its stream), then resumed from QueryUpload's persisted size; some are
given up with AbortUpload and some simply abandoned. At the end: every
finished object reads back with the source's SHA-256, abandoned and aborted
uploads left no object, the gateway's peak RSS stays within a per-stream
budget far below the bytes moved (printed), and after `storagegw cleanup`
nothing is left behind: no upload directory or temp file, no multipart upload,
no record.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import grpc
import psutil
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.big_data import BIG_DATA
from tests.conftest import CLI_PATH, backend_env, gateway_process
from tests.local_root import files_outside_objects
from tests.rpc_calls import crc

UPLOADS = 64
MiB = 1024 * 1024
SIZE = 64 * MiB
CHUNK = MiB
SECRET = "resumable-load-test-secret"


@dataclass
class Source:
    """A 64 MiB object built from one random block: chunk i is i's 8 bytes
    then the block, so any chunk can be sent again without holding it."""

    index: int
    block: bytes = field(repr=False)
    sha256: bytes = b""
    fate: str = "finish"  # "finish", "abort" (AbortUpload) or "abandon"
    cuts: list[int] = field(default_factory=list)  # chunk indexes to cancel at

    def chunk(self, i: int) -> bytes:
        return i.to_bytes(8, "big") + self.block

    @classmethod
    def make(cls, index: int, rng: random.Random) -> Source:
        source = cls(index, rng.randbytes(CHUNK - 8))
        sha = hashlib.sha256()
        for i in range(SIZE // CHUNK):
            sha.update(source.chunk(i))
        source.sha256 = sha.digest()
        source.cuts = sorted(rng.sample(range(1, SIZE // CHUNK), rng.randint(1, 3)))
        source.fate = rng.choices(["finish", "abort", "abandon"], [6, 1, 1])[0]
        return source


def _messages(
    source: Source, upload_id: str, start: int, stop: int, finish: bool
) -> AsyncIterator[pb.PutRequest]:
    async def gen() -> AsyncIterator[pb.PutRequest]:
        yield pb.PutRequest(upload_id=upload_id, write_offset=start * CHUNK)
        for i in range(start, stop):
            data = source.chunk(i)
            yield pb.PutRequest(
                write_offset=i * CHUNK, chunk=pb.ChecksummedData(content=data, crc32c=crc(data))
            )
        if finish:
            yield pb.PutRequest(finish_write=True)

    return gen()


def _busy(error: BaseException) -> bool:
    """UPLOAD_BUSY: the gateway has not yet wound down the stream this client
    cancelled just before (it notices a cancel a moment later)."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.ABORTED


def _free_by() -> float:
    # A bound on polling for the upload to be free again (never reached
    # unless the gateway keeps a cancelled stream forever).
    return asyncio.get_running_loop().time() + 60


async def _held_at_cut(
    source: Source, upload_id: str, start: int, cut: int, sent: asyncio.Event
) -> AsyncIterator[pb.PutRequest]:
    async for message in _messages(source, upload_id, start, SIZE // CHUNK, True):
        yield message
        if message.write_offset >= cut * CHUNK:
            sent.set()
            await asyncio.Event().wait()  # hold the stream open until cancelled


async def _cancelled_segment(
    stub: storage_pb2_grpc.StorageServiceStub, source: Source, upload_id: str, start: int, cut: int
) -> None:
    """Stream chunks from start and cancel the call once chunk cut was sent:
    the client giving up mid-stream, not a clean end."""
    deadline = _free_by()
    while True:
        sent = asyncio.Event()
        call = stub.Put(_held_at_cut(source, upload_id, start, cut, sent))
        held = asyncio.ensure_future(sent.wait())
        answered = asyncio.ensure_future(asyncio.shield(call))
        await asyncio.wait([held, answered], return_when=asyncio.FIRST_COMPLETED)
        if held.done():
            answered.cancel()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            return
        held.cancel()
        error = answered.exception()
        assert error is not None
        assert _busy(error), error
        assert asyncio.get_running_loop().time() < deadline, "the upload stayed busy"


async def _finish(
    stub: storage_pb2_grpc.StorageServiceStub, source: Source, upload_id: str
) -> pb.ObjectInfo:
    deadline = _free_by()
    while True:
        query = pb.QueryUploadRequest(upload_id=upload_id)
        persisted = (await stub.QueryUpload(query)).persisted_size
        assert persisted % CHUNK == 0
        messages = _messages(source, upload_id, persisted // CHUNK, SIZE // CHUNK, True)
        try:
            done = await stub.Put(messages)
        except grpc.aio.AioRpcError as error:
            if not _busy(error):
                raise
            assert asyncio.get_running_loop().time() < deadline, "the upload stayed busy"
            continue
        return done.object


async def _upload(
    stub: storage_pb2_grpc.StorageServiceStub, source: Source
) -> tuple[str, pb.ObjectInfo | None]:
    key = f"load/{source.index:02d}.bin"
    started = await stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key=key, size=SIZE)))
    upload_id = started.upload_id
    for cut in source.cuts:
        persisted = (
            await stub.QueryUpload(pb.QueryUploadRequest(upload_id=upload_id))
        ).persisted_size
        start = persisted // CHUNK
        if cut > start:
            await _cancelled_segment(stub, source, upload_id, start, cut)
    if source.fate == "abort":
        # Right after the cancel: the abort wins over the stream, whether or
        # not the gateway noticed the cancel yet.
        response = await stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id))
        assert response.existed
        return key, None
    if source.fate == "abandon":
        return key, None
    return key, await _finish(stub, source, upload_id)


async def _read_sha256(stub: storage_pb2_grpc.StorageServiceStub, key: str) -> bytes:
    sha = hashlib.sha256()
    async for response in stub.Get(pb.GetRequest(key=key)):
        sha.update(response.chunk.content)
    return sha.digest()


async def _run(target: str, sources: list[Source]) -> None:
    options = [
        ("grpc.max_send_message_length", 4 * MiB),
        ("grpc.max_receive_message_length", 4 * MiB),
    ]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        results = await asyncio.gather(*(_upload(stub, s) for s in sources))
        for source, (key, info) in zip(sources, results, strict=True):
            if source.fate == "finish":
                assert info is not None
                assert info.size == SIZE
                assert info.sha256 == source.sha256, key
                assert await _read_sha256(stub, key) == source.sha256, key
                await stub.Delete(pb.DeleteRequest(key=key))
            else:
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.Head(pb.HeadRequest(key=key))
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss


def _leftovers(backend: str, env: dict[str, str], data_dir: Path) -> list[str]:
    if backend == "local":
        return files_outside_objects(data_dir / "default")
    s3 = boto3.client(
        "s3",
        endpoint_url=env["STORAGE_S3_ENDPOINT"],
        aws_access_key_id=env["STORAGE_S3_ACCESS_KEY"],
        aws_secret_access_key=env["STORAGE_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    bucket = env["STORAGE_S3_BUCKET"]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [f"multipart {u['Key']}" for u in uploads] + [f"object {o['Key']}" for o in objects]


@BIG_DATA
@pytest.mark.parametrize("backend", ["local", "s3-moto"])
def test_concurrent_uploads_with_aborts_and_resumes(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    rng = random.Random(f"load-{backend}")
    sources = [Source.make(i, rng) for i in range(UPLOADS)]
    assert {s.fate for s in sources} == {"finish", "abort", "abandon"}
    env = {**backend_env(request, backend), "STORAGE_URL_SECRET": SECRET}
    if backend == "s3-moto":
        env["STORAGE_S3_PART_SIZE"] = "8MiB"
    with gateway_process(tmp_path, **env) as gateway:
        asyncio.run(_run(gateway.target, sources))
        peak = _peak_rss(gateway.process.pid)
    moved = UPLOADS * SIZE
    # Per stream the gateway holds gRPC's receive window and two chunks in its
    # pipeline, and for S3 the parts in flight (concurrency 4) and the next.
    per_stream = 8 * CHUNK if backend == "local" else (4 + 1) * 8 * MiB
    budget = 256 * MiB + UPLOADS * per_stream
    print(
        f"\n{backend}: gateway peak RSS {peak / MiB:.0f} MiB for {moved // MiB} MiB moved by "
        f"{UPLOADS} concurrent uploads (budget {budget // MiB} MiB)"
    )
    assert peak < budget
    assert peak < moved // 2

    cleanup = subprocess.run(
        [CLI_PATH, "cleanup", "--older-than", "0.001s"],
        env={**os.environ, **env, "STORAGE_BASE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cleanup.returncode == 0, cleanup.stderr
    assert _leftovers(backend, env, tmp_path) == []

"""What is specific to the local backend's resumable uploads: the files under
root/uploads, their durability, the lock, and cleanup."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.backends.base import ResumableBackend, StaleUploadCleaner
from gateway.backends.local import upload_files as files
from gateway.backends.local.backend import LocalBackend
from gateway.backends.shared.upload_records import UploadRecord
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, Conditions, WriteOptions
from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import CLI_PATH, RunningGateway, run_gateway
from tests.local_root import files_outside_objects
from tests.rpc.resumable_calls import SECRET, Stub, put, query, segment, start
from tests.rpc_calls import call_error, get

MiB = 1024 * 1024
UNIT = files.CHECKPOINT_BYTES


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningGateway]:
    env = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path) as gateway:
        yield gateway


@pytest.fixture
def stub(running: RunningGateway) -> Iterator[Stub]:
    with grpc.insecure_channel(running.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


def root_of(running: RunningGateway) -> Path:
    root: Path = running.backend().root
    return root


def upload_dirs(root: Path) -> list[Path]:
    uploads = root / "uploads"
    return sorted(uploads.iterdir()) if uploads.exists() else []


def record_of(directory: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((directory / files.RECORD).read_bytes())
    return doc


def data_bytes(directory: Path) -> int:
    """Bytes of object data in an upload's data file (past its header)."""
    header_len = record_of(directory)["driver"]["header_len"]  # type: ignore[index]
    return (directory / files.DATA).stat().st_size - 8 - int(header_len)


def test_the_record_claims_only_fsynced_bytes(
    running: RunningGateway, stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: dict[int, int] = {}  # inode -> file size at its last fsync
    claims: list[tuple[int, int]] = []  # (persisted_size, data bytes fsynced then)
    real_fsync, real_write_record = os.fsync, files.write_record

    def fsync(fd: int) -> None:
        real_fsync(fd)
        info = os.fstat(fd)
        synced[info.st_ino] = info.st_size

    def write_record(directory: str, record: UploadRecord) -> None:
        if record.complete is None and "committing" not in record.driver:
            data = os.stat(os.path.join(directory, files.DATA))
            header = 8 + int(record.driver["header_len"])
            claims.append((record.persisted_size, synced.get(data.st_ino, 0) - header))
        real_write_record(directory, record)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(files, "write_record", write_record)
    data = os.urandom(3 * UNIT + 5 * MiB)
    upload_id = start(stub, "synced.bin")
    first = put(stub, segment(upload_id, data[: 2 * UNIT + MiB], 0, finish=False))
    assert first.persisted_size == 2 * UNIT
    [directory] = upload_dirs(root_of(running))
    assert record_of(directory)["persisted_size"] == 2 * UNIT
    assert data_bytes(directory) >= 2 * UNIT
    assert [size for size, _ in claims] == [0, UNIT, 2 * UNIT]
    assert all(size <= durable for size, durable in claims), claims

    done = put(stub, segment(upload_id, data, first.persisted_size, finish=True))
    assert done.object.sha256 == hashlib.sha256(data).digest()
    assert [size for size, _ in claims] == [0, UNIT, 2 * UNIT, 3 * UNIT]
    assert all(size <= durable for size, durable in claims), claims


def test_a_resume_truncates_bytes_past_the_last_checkpoint(
    running: RunningGateway, stub: Stub
) -> None:
    data = os.urandom(UNIT + 3 * MiB)
    upload_id = start(stub, "truncated.bin")
    put(stub, segment(upload_id, data[: UNIT + MiB], 0, finish=False))
    [directory] = upload_dirs(root_of(running))
    # Bytes the record does not claim, such as a crash leaves: past the end
    # of the object, so that nothing written later covers them.
    with open(directory / files.DATA, "ab") as file:
        file.write(os.urandom(4 * MiB))
    assert data_bytes(directory) == UNIT + 5 * MiB
    persisted = query(stub, upload_id).persisted_size
    assert persisted == UNIT
    # A stream that brings nothing new: the resume alone truncates.
    put(stub, segment(upload_id, data[:persisted], persisted, finish=False))
    assert data_bytes(directory) == UNIT
    done = put(stub, segment(upload_id, data, persisted, finish=True))
    assert done.object.size == len(data)
    assert get(stub, "truncated.bin")[1] == data


def test_two_streams_on_one_upload(running: RunningGateway, stub: Stub) -> None:
    data = os.urandom(UNIT + 2 * MiB)
    upload_id = start(stub, "busy.bin")
    release = threading.Event()

    def held() -> Iterator[pb.PutRequest]:
        messages = segment(upload_id, data, 0, finish=True)
        for message in messages:
            if message.write_offset == UNIT + MiB:
                release.wait(60)  # hold the stream open with a checkpoint made
            yield message

    first = stub.Put.future(held())
    try:
        deadline = time.monotonic() + 60
        while query(stub, upload_id).persisted_size < UNIT:
            assert time.monotonic() < deadline, "the first stream made no checkpoint"
        code, reason, _ = call_error(stub.Put, segment(upload_id, data, UNIT, finish=True))
        assert (code, reason) == (grpc.StatusCode.ABORTED, "UPLOAD_BUSY")
        # (An AbortUpload would end the first stream: tests/rpc/test_resumable_abort.py.)
    finally:
        release.set()
    assert first.result(60).object.sha256 == hashlib.sha256(data).digest()
    # The stream ended: the upload is free again (and complete).
    again = put(stub, segment(upload_id, data, 0, finish=True))
    assert again.object.generation == first.result().object.generation


def test_after_commit_only_the_record_remains(running: RunningGateway, stub: Stub) -> None:
    root = root_of(running)
    data = os.urandom(UNIT + 123)
    upload_id = start(stub, "a/b/committed.bin")
    put(stub, segment(upload_id, data, 0, finish=True))
    [directory] = upload_dirs(root)
    assert sorted(p.name for p in directory.iterdir()) == [files.RECORD]
    assert record_of(directory)["complete"] is not None
    assert files_outside_objects(root) == [f"uploads/{directory.name}/{files.RECORD}"]
    assert (root / "objects" / "a" / "b" / "committed.bin").is_file()


def test_cleanup_removes_old_uploads_and_leaves_only_objects(
    running: RunningGateway, stub: Stub
) -> None:
    root = root_of(running)
    backend = running.backend()
    data = os.urandom(UNIT + MiB)
    unfinished = start(stub, "unfinished.bin")
    put(stub, segment(unfinished, data, 0, finish=False))
    finished = start(stub, "finished.bin")
    put(stub, segment(finished, data, 0, finish=True))
    start(stub, "never-written.bin")
    assert len(upload_dirs(root)) == 3

    assert running.run(cleaner(backend).abort_stale_uploads(3600)) == 0  # all young
    assert len(upload_dirs(root)) == 3
    # A dry run counts what would go and aborts nothing.
    assert running.run(cleaner(backend).abort_stale_uploads(0, dry_run=True)) == 2
    assert len(upload_dirs(root)) == 3
    assert running.run(cleaner(backend).abort_stale_uploads(0)) == 2  # the unfinished ones
    assert upload_dirs(root) == []
    assert files_outside_objects(root) == []
    assert get(stub, "finished.bin")[1] == data
    code, reason, _ = call_error(stub.QueryUpload, pb.QueryUploadRequest(upload_id=unfinished))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "UPLOAD_NOT_FOUND")


def test_cleanup_command(tmp_path: Path) -> None:
    env = {"STORAGE_BACKEND": "local", "STORAGE_URL_SECRET": SECRET}
    with run_gateway(env, tmp_path) as running, grpc.insecure_channel(running.target) as channel:
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        put(stub, segment(start(stub, "left.bin"), os.urandom(MiB), 0, finish=False))
        root = root_of(running)
    assert len(upload_dirs(root)) == 1
    settings = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))},
        **env,
        "STORAGE_BASE_PATH": str(tmp_path),
    }
    result = subprocess.run(
        [CLI_PATH, "cleanup", "--older-than", "0.001"],
        env=settings,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "default: aborted 1 incomplete upload(s)" in result.stdout
    assert upload_dirs(root) == []
    assert files_outside_objects(root) == []


# Driver level.


def uploads(backend: LocalBackend) -> ResumableBackend:
    assert backend.capabilities.uploads is not None
    return backend.capabilities.uploads


def cleaner(backend: LocalBackend) -> StaleUploadCleaner:
    assert backend.capabilities.cleaner is not None
    return backend.capabilities.cleaner


async def write_segment(backend: LocalBackend, key: str, handle: str, data: bytes) -> int:
    """Continue the upload with data past its persisted size, checkpointing
    as the gateway does; the persisted size after."""
    status, writer = await uploads(backend).resume_upload(key, handle)
    assert writer is not None
    size = status.persisted_size
    for position in range(size, len(data), MiB):
        await writer.write(data[position : position + MiB])
        size = min(position + MiB, len(data))
        if size % writer.checkpoint_bytes == 0:
            await writer.checkpoint(size, b"state@%d" % size)
    await writer.suspend()
    return (await uploads(backend).query_upload(key, handle)).persisted_size


async def commit(backend: LocalBackend, key: str, handle: str, data: bytes) -> object:
    status, writer = await uploads(backend).resume_upload(key, handle)
    assert writer is not None
    try:
        await writer.write(data[status.persisted_size :])
        sha = hashlib.sha256(data).digest()
        return await writer.commit(Checksums(crc32c(data), sha, len(data)))
    except BaseException:
        await writer.suspend()
        raise


async def test_one_writer_at_a_time(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    handle = await uploads(backend).start_upload("k", WriteOptions(), b"s0")
    status, writer = await uploads(backend).resume_upload("k", handle)
    assert writer is not None
    assert status.state == b"s0"
    with pytest.raises(GatewayError) as caught:
        await uploads(LocalBackend(tmp_path)).resume_upload("k", handle)  # as another process would
    assert caught.value.reason is Reason.UPLOAD_BUSY
    assert await cleaner(backend).abort_stale_uploads(0) == 0  # skipped: a stream holds it
    await writer.suspend()
    _, again = await uploads(backend).resume_upload("k", handle)
    assert again is not None
    await again.suspend()
    assert await cleaner(backend).abort_stale_uploads(0) == 1


async def test_a_dry_run_counts_what_the_cleanup_would_abort(tmp_path: Path) -> None:
    """`storagegw cleanup --dry-run` beside a gateway on the same root: an
    upload that gateway's stream is writing is left alone by the cleanup,
    so the dry run does not count it either."""
    serving = LocalBackend(tmp_path)
    handle = await uploads(serving).start_upload("k", WriteOptions(), b"s0")
    _, writer = await uploads(serving).resume_upload("k", handle)
    assert writer is not None
    await writer.write(b"x" * MiB)
    cleanup = LocalBackend(tmp_path)  # as the cleanup command's own process
    assert await cleaner(cleanup).abort_stale_uploads(0, dry_run=True) == 0
    assert await cleaner(cleanup).abort_stale_uploads(0) == 0
    await writer.suspend()
    assert await cleaner(cleanup).abort_stale_uploads(0, dry_run=True) == 1
    assert (await uploads(cleanup).query_upload("k", handle)).complete is None  # still there
    assert await cleaner(cleanup).abort_stale_uploads(0) == 1
    with pytest.raises(GatewayError) as caught:
        await uploads(serving).query_upload("k", handle)
    assert caught.value.reason is Reason.UPLOAD_NOT_FOUND


async def test_a_restart_keeps_uploads_in_flight(tmp_path: Path) -> None:
    data = os.urandom(UNIT + MiB)
    backend = LocalBackend(tmp_path)
    handle = await uploads(backend).start_upload("kept", WriteOptions(), b"s0")
    assert await write_segment(backend, "kept", handle, data) == UNIT
    restarted = LocalBackend(tmp_path)  # sweeps root/tmp at start
    status = await uploads(restarted).query_upload("kept", handle)
    assert (status.persisted_size, status.state) == (UNIT, b"state@%d" % UNIT)
    meta = await commit(restarted, "kept", handle, data)
    assert meta == await restarted.head("kept")
    assert (await uploads(restarted).query_upload("kept", handle)).complete == meta


async def test_a_failed_commit_stays_resumable(tmp_path: Path) -> None:
    data = os.urandom(UNIT + 5)
    backend = LocalBackend(tmp_path)
    options = WriteOptions(conditions=Conditions(if_none_match="*"))
    handle = await uploads(backend).start_upload("once", options, b"s0")
    await write_segment(backend, "once", handle, data[:UNIT])
    other = await backend.open_write("once", WriteOptions())
    await other.write(b"x")
    await other.commit(Checksums(crc32c(b"x"), hashlib.sha256(b"x").digest(), 1))
    with pytest.raises(GatewayError) as caught:
        await commit(backend, "once", handle, data)
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert (await uploads(backend).query_upload("once", handle)).complete is None
    assert await backend.delete("once")
    meta = await commit(backend, "once", handle, data)
    assert (await uploads(backend).query_upload("once", handle)).complete == meta


async def test_a_crash_after_install_finds_the_upload_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(MiB)
    backend = LocalBackend(tmp_path)
    handle = await uploads(backend).start_upload("crash", WriteOptions(), b"s0")
    real = files.write_record

    def dies_before_recording_completion(directory: str, record: UploadRecord) -> None:
        if record.complete is not None:
            raise OSError("the process died here")
        real(directory, record)

    monkeypatch.setattr(files, "write_record", dies_before_recording_completion)
    with pytest.raises(OSError, match="died"):
        await commit(backend, "crash", handle, data)
    monkeypatch.setattr(files, "write_record", real)
    installed = await backend.head("crash")
    restarted = LocalBackend(tmp_path)
    assert (await uploads(restarted).query_upload("crash", handle)).complete == installed
    status, writer = await uploads(restarted).resume_upload("crash", handle)
    assert writer is None
    assert status.complete == installed
    assert not await uploads(restarted).abort_upload("crash", handle)  # finished, so not unfinished


async def test_handles_that_are_not_tokens(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    (tmp_path / "outside").mkdir()
    for handle in ("../outside", "..", "a/b", "", "../../tmp"):
        with pytest.raises(GatewayError) as caught:
            await uploads(backend).query_upload("k", handle)
        assert caught.value.reason is Reason.UPLOAD_NOT_FOUND
        assert not await uploads(backend).abort_upload("k", handle)
    assert (tmp_path / "outside").is_dir()
    handle = await uploads(backend).start_upload("k", WriteOptions(), b"s0")
    with pytest.raises(GatewayError) as caught:
        await uploads(backend).query_upload("another key", handle)
    assert caught.value.reason is Reason.UPLOAD_NOT_FOUND
    assert not await uploads(backend).abort_upload("another key", handle)
    assert await uploads(backend).abort_upload("k", handle)
    assert not await uploads(backend).abort_upload("k", handle)
    assert files_outside_objects(tmp_path) == []

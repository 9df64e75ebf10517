"""Resumable uploads and downloads in the bundled clients, against a real
gateway (memory backend), through a TCP proxy that cuts connections."""

from __future__ import annotations

import _thread
import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import (
    AsyncClient,
    Client,
    InvalidUploadId,
    PreconditionFailed,
    RetryPolicy,
    UploadNotFound,
    UploadSession,
)
from tests.conftest import RunningGateway
from tests.log_records import AccessLog

MIB = 1024 * 1024
# Tiny pauses: the tests never wait on the clock.
FAST = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def client(memory_gateway: RunningGateway) -> Iterator[Client]:
    with Client(memory_gateway.target, timeout=30, retry=FAST) as storage:
        yield storage


def source_file(tmp_path: Path, size: int, name: str = "source.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def test_start_query_resume_and_query_again(client: Client, tmp_path: Path) -> None:
    path, data = source_file(tmp_path, 5 * MIB + 17)
    session = client.start_upload("step.bin", content_type="application/x-step", size=len(data))
    assert isinstance(session, UploadSession)
    assert session.key == "step.bin"
    assert session.expire_time is not None
    status = client.query_upload(session.upload_id)
    assert (status.persisted_size, status.complete, status.object) == (0, False, None)
    assert not client.exists("step.bin")

    seen: list[int] = []
    info = client.resume_upload(session.upload_id, path, progress=seen.append)
    assert info.sha256 == hashlib.sha256(data).digest()
    assert info.content_type == "application/x-step"
    assert seen[-1] == len(data)
    assert client.get_bytes("step.bin") == data

    done = client.query_upload(session.upload_id)
    assert done.complete
    assert done.persisted_size == len(data)
    assert done.object is not None
    assert done.object.etag == info.etag
    # Resuming a finished upload answers with its object, verified again.
    assert client.resume_upload(session.upload_id, path).etag == info.etag


def test_abort_upload(client: Client) -> None:
    session = client.start_upload("aborted.bin")
    assert client.abort_upload(session.upload_id) is True
    with pytest.raises(UploadNotFound):
        client.query_upload(session.upload_id)


def test_forged_upload_id(client: Client) -> None:
    with pytest.raises(InvalidUploadId):
        client.query_upload("not-an-upload-id")


def test_put_file_resumable_round_trip(client: Client, tmp_path: Path) -> None:
    path, data = source_file(tmp_path, 9 * MIB + 3)
    sessions: list[UploadSession] = []
    info = client.put_file("auto.bin", path, on_upload_start=sessions.append)
    assert len(sessions) == 1  # 9 MiB is over the 8 MiB threshold: resumable
    assert info.sha256 == hashlib.sha256(data).digest()
    assert client.query_upload(sessions[0].upload_id).complete
    small, _ = source_file(tmp_path, 1000, "small.bin")
    client.put_file("small.bin", small, on_upload_start=sessions.append)
    assert len(sessions) == 1  # below the threshold: one plain Put


def test_put_file_survives_cut_connections(memory_gateway, proxy, tmp_path: Path) -> None:
    path, data = source_file(tmp_path, 12 * MIB + 5)
    with Client(proxy.target, retry=FAST) as client:
        proxy.cut_after(upstream=3 * MIB)
        progress: list[int] = []

        def cut_again(sent: int) -> None:
            progress.append(sent)
            if proxy.cuts == 1 and sent > 7 * MIB and not proxy._cut_at:
                proxy.cut_after(upstream=2 * MIB)

        info = client.put_file("cut.bin", path, resumable=True, progress=cut_again)
    assert proxy.cuts == 2
    assert info.sha256 == hashlib.sha256(data).digest()
    with Client(memory_gateway.target) as direct:
        assert direct.get_bytes("cut.bin") == data
    # Resumed from what the gateway held, not from the start each time.
    assert proxy.upstream_bytes < 2 * len(data)


def ok_record(access_log: AccessLog, method: str) -> logging.LogRecord:
    """The first successful call of `method` in the gateway's access log."""

    def found() -> logging.LogRecord | None:
        return next(
            (r for r in access_log.records if r.rpc_method == method and r.status == "OK"), None
        )

    with access_log._arrived:
        access_log._arrived.wait_for(lambda: found() is not None, 30)
    record = found()
    assert record is not None
    return record


def test_download_file_resumes_from_the_verified_offset(
    memory_gateway, proxy, access_log: AccessLog, tmp_path: Path
) -> None:
    data = os.urandom(12 * MIB + 7)
    with Client(memory_gateway.target) as direct:
        direct.put_bytes("down.bin", data)
    dest = tmp_path / "down.bin"
    with Client(proxy.target, retry=FAST) as client:
        proxy.cut_after(downstream=5 * MIB)
        info = client.download_file("down.bin", dest)
    assert proxy.cuts == 1
    assert dest.read_bytes() == data
    assert info.sha256 == hashlib.sha256(data).digest()
    # The second Get asked only for what had not arrived.
    resumed = ok_record(access_log, "Get")
    assert 0 < resumed.bytes < len(data)
    assert proxy.downstream_bytes < len(data) + 6 * MIB


def test_download_of_a_replaced_object_is_not_spliced(memory_gateway, proxy, tmp_path) -> None:
    # Larger than what the socket buffers and HTTP/2 windows between gateway,
    # proxy and client can hold, so that the cut finds most of the object
    # still to come (a 6 MiB object could already be in the client's buffers
    # and arrive whole despite the cut).
    first = os.urandom(48 * MIB)
    with Client(memory_gateway.target) as direct:
        direct.put_bytes("moving.bin", first)
        (tmp_path / "out").mkdir()
        dest = tmp_path / "out" / "moving.bin"
        with Client(proxy.target, retry=FAST) as client:
            replaced = []

            def replace() -> None:
                # At the cut, before the client can reconnect and resume.
                replaced.append(direct.put_bytes("moving.bin", os.urandom(len(first))))

            def cut_once_some_bytes_are_written(done: int) -> None:
                # Cut once the client holds part of the first object (a cut
                # before it had any would rightly start over on the new one).
                if done and not replaced:
                    proxy.cut_after(then=replace)
                    proxy.cut()

            with pytest.raises(PreconditionFailed):
                client.download_file(
                    "moving.bin", dest, parallel=1, progress=cut_once_some_bytes_are_written
                )
    assert replaced
    assert list((tmp_path / "out").iterdir()) == []  # no partial file left


def test_a_final_error_is_raised_at_once_and_the_upload_aborted(
    client: Client, access_log: AccessLog, tmp_path: Path
) -> None:
    path, _ = source_file(tmp_path, 3 * MIB)
    sessions: list[UploadSession] = []

    def someone_else_creates_it(session: UploadSession) -> None:
        sessions.append(session)
        client.put_bytes("contested.bin", b"first")

    with pytest.raises(PreconditionFailed):
        client.put_file(
            "contested.bin",
            path,
            resumable=True,
            if_generation_match=0,
            on_upload_start=someone_else_creates_it,
        )
    assert client.get_bytes("contested.bin") == b"first"
    with pytest.raises(UploadNotFound):
        client.query_upload(sessions[0].upload_id)
    access_log.wait("AbortUpload")
    uploads = [r for r in access_log.records if r.rpc_method == "Put" and r.bytes > 100]
    assert len(uploads) == 1  # no retry


HELD = threading.Event()


def interrupt_once() -> None:
    """Ctrl-C in the main thread (progress runs in a gRPC thread), once; then
    hold the request stream, so that the upload cannot finish before the main
    thread takes the interrupt."""
    if not interrupt_once.done:  # type: ignore[attr-defined]
        interrupt_once.done = True  # type: ignore[attr-defined]
        HELD.clear()
        _thread.interrupt_main()
        HELD.wait(60)


@pytest.fixture(autouse=True)
def _release_held_streams() -> Iterator[None]:
    yield
    HELD.set()


def test_keep_upload_leaves_it_resumable(client: Client, tmp_path: Path) -> None:
    interrupt_once.done = False  # type: ignore[attr-defined]
    path, data = source_file(tmp_path, 3 * MIB)
    sessions: list[UploadSession] = []

    def interrupt(sent: int) -> None:
        if sent >= 2 * MIB:
            interrupt_once()

    with pytest.raises(KeyboardInterrupt):
        client.put_file(
            "kept.bin",
            path,
            resumable=True,
            keep_upload=True,
            on_upload_start=sessions.append,
            progress=interrupt,
        )
    status = client.query_upload(sessions[0].upload_id)
    assert not status.complete
    info = client.resume_upload(sessions[0].upload_id, path)
    assert info.sha256 == hashlib.sha256(data).digest()


def test_interrupted_upload_is_aborted_by_default(client: Client, tmp_path: Path) -> None:
    interrupt_once.done = False  # type: ignore[attr-defined]
    path, _ = source_file(tmp_path, 3 * MIB)
    sessions: list[UploadSession] = []

    def interrupt(sent: int) -> None:
        if sent >= MIB:
            interrupt_once()

    with pytest.raises(KeyboardInterrupt):
        client.put_file(
            "dropped.bin", path, resumable=True, on_upload_start=sessions.append, progress=interrupt
        )
    with pytest.raises(UploadNotFound):
        client.query_upload(sessions[0].upload_id)
    assert not client.exists("dropped.bin")


def test_async_client_resumes_both_ways(memory_gateway, proxy, tmp_path: Path) -> None:
    path, data = source_file(tmp_path, 10 * MIB + 1)
    dest = tmp_path / "back.bin"

    async def main() -> None:
        async with AsyncClient(proxy.target, retry=FAST) as client:
            proxy.cut_after(upstream=4 * MIB)
            info = await client.put_file("async.bin", path)
            assert proxy.cuts == 1
            assert info.sha256 == hashlib.sha256(data).digest()
            proxy.cut_after(downstream=4 * MIB)
            await client.download_file("async.bin", dest)
            assert proxy.cuts == 2
            session = await client.start_upload("async2.bin")
            status = await client.query_upload(session.upload_id)
            assert status.persisted_size == 0
            assert await client.abort_upload(session.upload_id)

    asyncio.run(main())
    assert dest.read_bytes() == data

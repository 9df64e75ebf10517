"""Resumable uploads and downloads in the bundled clients, against a real
gateway (memory backend), through a TCP proxy that cuts connections."""

from __future__ import annotations

import asyncio
import hashlib
import os
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
from tests.tcp_proxy import TcpProxy

MIB = 1024 * 1024
# Tiny pauses: the tests never wait on the clock.
FAST = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def client(memory_gateway: RunningGateway) -> Iterator[Client]:
    with Client(memory_gateway.target, timeout=30, retry=FAST) as storage:
        yield storage


@pytest.fixture
def proxy(memory_gateway: RunningGateway) -> Iterator[TcpProxy]:
    with TcpProxy(memory_gateway.target) as running:
        yield running


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
    assert done.object is not None and done.object.etag == info.etag
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

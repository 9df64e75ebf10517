"""write_upload: a resumable upload sent a part at a time, against a real
gateway (memory backend: it persists in units of 256 KiB)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from storagegw import AsyncClient, Client, InvalidWriteOffset, RetryPolicy
from tests.conftest import RunningGateway
from tests.tcp_proxy import TcpProxy

KIB = 1024
MIB = 1024 * KIB
# Tiny pauses: the tests never wait on the clock.
FAST = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def client(memory_gateway: RunningGateway) -> Iterator[Client]:
    with Client(memory_gateway.target, timeout=30, retry=FAST) as storage:
        yield storage


def test_parts_persist_and_the_last_commits(client: Client) -> None:
    data = os.urandom(3 * MIB + 5)
    session = client.start_upload("parts.bin", content_type="application/x-parts")

    first = client.write_upload(session.upload_id, data[: 2 * MIB], offset=0)
    assert (first.persisted_size, first.complete, first.object) == (2 * MIB, False, None)
    assert client.query_upload(session.upload_id).persisted_size == 2 * MIB
    assert not client.exists("parts.bin")  # nothing visible before the finish

    # Bytes the gateway holds already are skipped, not stored twice.
    again = client.write_upload(session.upload_id, data[MIB : 3 * MIB], offset=MIB)
    assert again.persisted_size == 3 * MIB
    assert not client.exists("parts.bin")

    done = client.write_upload(session.upload_id, data[3 * MIB :], offset=3 * MIB, finish=True)
    assert done.complete
    assert done.object is not None
    assert done.persisted_size == done.object.size == len(data)
    assert done.object.content_type == "application/x-parts"
    assert client.get_bytes("parts.bin") == data
    assert client.query_upload(session.upload_id).complete


def test_a_part_persists_whole_units_only(client: Client) -> None:
    data = os.urandom(300 * KIB)
    session = client.start_upload("units.bin")
    status = client.write_upload(session.upload_id, data, offset=0)
    # The memory backend persists 256 KiB units: the rest is the caller's to send again.
    assert status.persisted_size == 256 * KIB
    done = client.write_upload(session.upload_id, data[256 * KIB :], offset=256 * KIB, finish=True)
    assert done.persisted_size == len(data)
    assert client.get_bytes("units.bin") == data


def test_a_part_past_the_persisted_size_is_refused(client: Client) -> None:
    session = client.start_upload("gap.bin")
    client.write_upload(session.upload_id, bytes(MIB), offset=0)
    with pytest.raises(InvalidWriteOffset) as refused:
        client.write_upload(session.upload_id, b"later", offset=2 * MIB)
    assert refused.value.persisted_size == MIB
    assert client.query_upload(session.upload_id).persisted_size == MIB
    assert not client.exists("gap.bin")


def test_a_broken_part_resumes_from_the_persisted_size(memory_gateway: RunningGateway) -> None:
    data = os.urandom(6 * MIB)
    with TcpProxy(memory_gateway.target) as proxy, Client(proxy.target, retry=FAST) as client:
        session = client.start_upload("broken.bin")
        proxy.cut_after(upstream=2 * MIB)
        status = client.write_upload(session.upload_id, data[: 4 * MIB], offset=0)
        assert proxy.cuts == 1
        assert status.persisted_size == 4 * MIB
        client.write_upload(session.upload_id, data[4 * MIB :], offset=4 * MIB, finish=True)
        # Resumed from what the gateway held, not from the part's start.
        assert proxy.upstream_bytes < 4 * MIB + len(data)
    with Client(memory_gateway.target) as direct:
        assert direct.get_bytes("broken.bin") == data


def test_async_client_writes_parts(memory_gateway: RunningGateway) -> None:
    data = os.urandom(2 * MIB + 3)

    async def main() -> None:
        async with AsyncClient(memory_gateway.target, retry=FAST) as client:
            session = await client.start_upload("async-parts.bin")
            status = await client.write_upload(session.upload_id, data[:MIB], offset=0)
            assert (status.persisted_size, status.complete) == (MIB, False)
            queried = await client.query_upload(session.upload_id)
            assert queried.persisted_size == MIB
            assert not await client.exists("async-parts.bin")
            with pytest.raises(InvalidWriteOffset) as refused:
                await client.write_upload(session.upload_id, b"x", offset=MIB + 1)
            assert refused.value.persisted_size == MIB
            done = await client.write_upload(session.upload_id, data[MIB:], offset=MIB, finish=True)
            assert done.object is not None
            assert done.object.size == len(data)
            assert await client.get_bytes("async-parts.bin") == data

    asyncio.run(main())

"""Files written through GatewayFileSystem stream their blocks to a resumable
upload as they fill, committed only at close (or a transaction's end), on a
real gateway with the memory backend (it persists 256 KiB units, so every
block of these tests is persisted whole as soon as it is sent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from storagegw import Client, RetryPolicy, UploadNotFound
from storagegw.fsspec import GatewayFileSystem
from storagegw.fsspec._file import GatewayFile
from tests.conftest import RunningGateway
from tests.tcp_proxy import TcpProxy

BLOCK = 1024 * 1024
# Tiny pauses: the tests never wait on the clock.
FAST = RetryPolicy(max_attempts=10, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def fs(memory_gateway: RunningGateway) -> Iterator[GatewayFileSystem]:
    system = GatewayFileSystem(target=memory_gateway.target, skip_instance_cache=True)
    yield system
    system.close()


@pytest.fixture
def client(memory_gateway: RunningGateway) -> Iterator[Client]:
    with Client(memory_gateway.target) as storage:
        yield storage


class MeasuredFile(GatewayFile):
    """A GatewayFile that records the bytes it holds (its block buffer and
    what it keeps unpersisted) before and after every block it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.held: list[int] = []
        super().__init__(*args, **kwargs)

    def _holding(self) -> int:
        return self.buffer.getbuffer().nbytes + self.unpersisted

    def _upload_chunk(self, final: bool = False) -> bool:
        self.held.append(self._holding())
        try:
            return bool(super()._upload_chunk(final))
        finally:
            self.held.append(self._holding())


def test_a_large_write_streams_its_blocks_before_close(
    fs: GatewayFileSystem, client: Client
) -> None:
    data = os.urandom(5 * BLOCK + 123)
    with fs.open("stream/large.bin", "wb", block_size=BLOCK) as file:
        for start in range(0, 3 * BLOCK, 64 * 1024):
            file.write(data[start : start + 64 * 1024])
        # Three blocks written: they are with the gateway, and nothing is visible.
        assert file.upload is not None
        assert client.query_upload(file.upload.upload_id).persisted_size >= 2 * BLOCK
        assert not client.exists("stream/large.bin")
        assert not fs.exists("stream/large.bin")
        file.write(data[3 * BLOCK :])
        assert not client.exists("stream/large.bin")
    status = client.query_upload(file.upload.upload_id)
    assert status.complete
    assert status.object is not None
    assert status.object.size == len(data)
    assert client.get_bytes("stream/large.bin") == data
    assert fs.cat_file("stream/large.bin") == data
    assert fs.info("stream/large.bin")["content_type"] == "application/octet-stream"


def test_a_streamed_file_holds_at_most_two_blocks(fs: GatewayFileSystem, client: Client) -> None:
    data = os.urandom(8 * BLOCK + 1000)
    file = MeasuredFile(fs, "stream/measured.bin", "wb", block_size=BLOCK)
    with file:
        for start in range(0, len(data), 100_000):
            file.write(data[start : start + 100_000])
    # Writes of 100,000 bytes fill 7 blocks (each sent) before the last, at close.
    assert len(file.held) == 2 * 8  # a record before and after each
    assert file.upload is not None
    assert max(file.held) <= 2 * BLOCK
    assert client.get_bytes("stream/measured.bin") == data


def test_a_small_file_is_one_put_at_close(fs: GatewayFileSystem, client: Client) -> None:
    with fs.open("stream/small.txt", "wb", block_size=BLOCK) as file:
        file.write(b"x" * (BLOCK - 1))
        assert not client.exists("stream/small.txt")
    assert file.upload is None
    assert client.get_bytes("stream/small.txt") == b"x" * (BLOCK - 1)


def test_an_exception_aborts_the_streamed_upload(fs: GatewayFileSystem, client: Client) -> None:
    files: list[GatewayFile] = []

    def write_and_fail() -> None:
        with fs.open("stream/broken.bin", "wb", block_size=BLOCK) as file:
            files.append(file)
            file.write(os.urandom(3 * BLOCK))
            assert client.query_upload(file.upload.upload_id).persisted_size >= 2 * BLOCK
            raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        write_and_fail()
    upload = files[0].upload
    assert upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(upload.upload_id)
    assert not client.exists("stream/broken.bin")
    assert fs.find("stream") == []


def test_a_transaction_finishes_streamed_files_at_its_end(
    fs: GatewayFileSystem, client: Client
) -> None:
    data = os.urandom(3 * BLOCK + 7)
    with fs.transaction:
        with fs.open("stream/t/big.bin", "wb", block_size=BLOCK) as file:
            file.write(data)
        # Closed, its blocks sent, and still not committed.
        assert file.upload is not None
        status = client.query_upload(file.upload.upload_id)
        assert status.persisted_size >= 2 * BLOCK
        assert not status.complete
        assert not client.exists("stream/t/big.bin")
    assert client.query_upload(file.upload.upload_id).complete
    assert client.get_bytes("stream/t/big.bin") == data


def test_a_discarded_transaction_aborts_streamed_files(
    fs: GatewayFileSystem, client: Client
) -> None:
    files: list[GatewayFile] = []

    def write_and_fail() -> None:
        with fs.transaction:
            with fs.open("stream/t/big.bin", "wb", block_size=BLOCK) as file:
                file.write(os.urandom(3 * BLOCK))
            files.append(file)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_and_fail()
    upload = files[0].upload
    assert upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(upload.upload_id)
    assert not client.exists("stream/t/big.bin")


def test_an_exclusive_streamed_file_refuses_an_existing_object(
    fs: GatewayFileSystem, client: Client
) -> None:
    client.put_bytes("stream/once.bin", b"first")
    file = fs.open("stream/fresh.bin", "xb", block_size=BLOCK)
    file.write(os.urandom(2 * BLOCK))
    client.put_bytes("stream/fresh.bin", b"meanwhile")  # created before the commit
    with pytest.raises(FileExistsError):
        file.close()
    assert client.get_bytes("stream/fresh.bin") == b"meanwhile"
    assert file.upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(file.upload.upload_id)


def test_a_broken_block_is_resent_from_the_persisted_size(
    memory_gateway: RunningGateway, client: Client
) -> None:
    data = os.urandom(8 * BLOCK + 9)
    cut = 6 * BLOCK
    with TcpProxy(memory_gateway.target) as proxy:
        fs = GatewayFileSystem(target=proxy.target, retry=FAST, skip_instance_cache=True)
        try:
            with fs.open("stream/cut.bin", "wb", block_size=2 * BLOCK) as file:
                file.write(data[:BLOCK])  # less than a block: nothing sent yet
                proxy.cut_after(upstream=cut)  # within the part of 8 MiB
                file.write(data[BLOCK:])
                assert proxy.cuts == 1
                assert file.upload is not None
                assert not client.query_upload(file.upload.upload_id).complete
        finally:
            fs.close()
        # Resumed from what the gateway held, not from the part's start (the
        # gateway persists as it receives, some way behind the proxy).
        assert proxy.upstream_bytes < cut + len(data) - BLOCK
    assert client.get_bytes("stream/cut.bin") == data


def test_blocks_the_backend_persists_in_part_keep_their_tails(
    fs: GatewayFileSystem, client: Client
) -> None:
    """Blocks of 300 KiB on a backend persisting 256 KiB units: each part's
    tail past the last unit is kept and goes again with the next part."""
    block = 300 * 1024
    data = os.urandom(10 * block + 11)
    with fs.open("stream/tails.bin", "wb", block_size=block) as file:
        for start in range(0, len(data), block):
            file.write(data[start : start + block])
            if file.upload is not None:
                status = client.query_upload(file.upload.upload_id)
                assert status.persisted_size == file.persisted
                assert file.persisted % (256 * 1024) == 0
                written = min(start + block, len(data))
                assert file.persisted + file.unpersisted + file.buffer.tell() == written
                assert file.unpersisted < 256 * 1024
    assert client.get_bytes("stream/tails.bin") == data

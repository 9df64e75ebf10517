"""GatewayFileSystem.open_async: fsspec's async files, reading ranged Gets a
block ahead and writing through one Put or a resumable upload committed at
close, on a real gateway per driver."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from storagegw import Client, PreconditionFailed, UploadNotFound
from storagegw.fsspec import AsyncGatewayFile, GatewayFileSystem
from tests.conftest import RunningGateway

MiB = 1024 * 1024


@pytest.fixture
async def afs(fs_gateway: RunningGateway) -> AsyncIterator[GatewayFileSystem]:
    """A file system on the test's own loop (asynchronous=True)."""
    fs = GatewayFileSystem(target=fs_gateway.target, asynchronous=True, skip_instance_cache=True)
    yield fs
    await fs._close()


@pytest.fixture
def client(fs_gateway: RunningGateway) -> Iterator[Client]:
    with Client(fs_gateway.target) as storage:
        yield storage


async def test_reads_fetch_ranges_a_block_ahead(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    data = os.urandom(3 * MiB + 123)
    path = f"{fs_root}/big.bin"
    client.put_bytes(path, data)
    async with await afs.open_async(path, "rb", block_size=256 * 1024) as file:
        assert isinstance(file, AsyncGatewayFile)
        assert file.size == len(data)
        pieces = [await file.read(64 * 1024) for _ in range(16)]  # the first MiB
        assert b"".join(pieces) == data[:MiB]
        # A Get of a block's worth ahead per 256 KiB of small reads, never the whole.
        assert 1 < file.fetches <= 5
        assert file.fetched < len(data)
        file.seek(2 * MiB + 5)
        assert await file.read(1000) == data[2 * MiB + 5 : 2 * MiB + 1005]
        file.seek(-100, 2)
        assert await file.read() == data[-100:]
        assert await file.read(10) == b""
        file.seek(0)
        assert await file.read() == data


async def test_a_replaced_object_is_an_error_not_a_mix(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    path = f"{fs_root}/replaced"
    client.put_bytes(path, b"a" * 100_000)
    async with await afs.open_async(path, block_size=1000) as file:
        assert await file.read(10) == b"a" * 10
        client.put_bytes(path, b"b" * 100_000)
        file.seek(50_000)  # past the read-ahead: a new Get
        with pytest.raises(OSError, match="if_generation_match") as caught:
            await file.read(10)
    assert isinstance(caught.value.__cause__, PreconditionFailed)


async def test_missing_objects_directories_and_text_modes_are_refused(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    client.put_bytes(f"{fs_root}/dir/file", b"x")
    with pytest.raises(FileNotFoundError):
        await afs.open_async(f"{fs_root}/missing")
    with pytest.raises(IsADirectoryError):
        await afs.open_async(f"{fs_root}/dir")
    with pytest.raises(ValueError, match="bytes only"):
        await afs.open_async(f"{fs_root}/dir/file", "r")
    with pytest.raises(FileExistsError):
        await afs.open_async(f"{fs_root}/dir/file", "xb")


async def test_a_large_write_streams_and_is_stored_at_close(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    data = os.urandom(3 * MiB + 7)
    path = f"{fs_root}/written.bin"
    async with await afs.open_async(path, "wb", block_size=MiB) as file:
        for start in range(0, len(data), 100_000):
            await file.write(data[start : start + 100_000])
        # Its blocks went to a resumable upload; nothing is visible yet.
        assert file.upload is not None
        assert not client.query_upload(file.upload.upload_id).complete
        assert not client.exists(path)
        assert not await afs._exists(path)
    assert client.query_upload(file.upload.upload_id).complete
    assert client.get_bytes(path) == data
    assert (await afs._info(path))["content_type"] == "application/octet-stream"


async def test_a_small_write_is_one_put_at_close(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    path = f"{fs_root}/small.txt"
    async with await afs.open_async(path, "wb") as file:
        await file.write(b"hello ")
        await file.write(b"world")
        assert not client.exists(path)
    assert file.upload is None
    assert client.get_bytes(path) == b"hello world"
    assert client.head(path).content_type == "text/plain"


async def test_an_exception_aborts_the_write(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    path = f"{fs_root}/broken.bin"
    files: list[AsyncGatewayFile] = []

    async def write_and_fail() -> None:
        async with await afs.open_async(path, "wb", block_size=MiB) as file:
            files.append(file)
            await file.write(os.urandom(2 * MiB + 1))
            raise RuntimeError("the writer failed")

    with pytest.raises(RuntimeError):
        await write_and_fail()
    upload = files[0].upload
    assert upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(upload.upload_id)
    assert not client.exists(path)


async def test_an_exclusive_write_refuses_an_object_made_meanwhile(
    afs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    fresh, raced = f"{fs_root}/fresh.bin", f"{fs_root}/raced.bin"
    async with await afs.open_async(fresh, "xb") as file:
        await file.write(b"created")
    assert client.get_bytes(fresh) == b"created"

    file = await afs.open_async(raced, "xb", block_size=MiB)
    await file.write(os.urandom(2 * MiB))
    client.put_bytes(raced, b"meanwhile")
    with pytest.raises(FileExistsError):
        await file.close()
    assert client.get_bytes(raced) == b"meanwhile"
    assert file.upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(file.upload.upload_id)

"""put_file, put and pipe_file inside `with fs.transaction:`: sent at once,
visible only when the transaction ends, discarded when it fails, on a real
gateway per driver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import Client, UploadNotFound
from storagegw.fsspec import GatewayFileSystem
from storagegw.fsspec._deferred import BLOCK_SIZE, DeferredWrite
from tests.conftest import RunningGateway


@pytest.fixture
def client(fs_gateway: RunningGateway) -> Iterator[Client]:
    with Client(fs_gateway.target) as storage:
        yield storage


def deferred(fs: GatewayFileSystem) -> list[DeferredWrite]:
    return [write for write in fs.transaction.files if isinstance(write, DeferredWrite)]


def test_put_file_in_a_transaction_is_stored_at_its_end(
    gateway_fs: GatewayFileSystem, client: Client, fs_root: str, tmp_path: Path
) -> None:
    large, small = tmp_path / "large.bin", tmp_path / "small.txt"
    large.write_bytes(os.urandom(2 * BLOCK_SIZE + 1234))
    small.write_bytes(b"small")
    with gateway_fs.transaction:
        gateway_fs.put_file(str(large), f"{fs_root}/large.bin")
        gateway_fs.put_file(str(small), f"{fs_root}/small.txt")
        assert gateway_fs.find(fs_root) == []
        assert not client.exists(f"{fs_root}/large.bin")
        writes = deferred(gateway_fs)
        # The large file's blocks went to an upload; no bytes wait in memory.
        upload = writes[0].part.upload
        assert upload is not None
        assert not client.query_upload(upload.upload_id).complete
        assert [len(write.part.held) for write in writes] == [0, 0]
    assert client.query_upload(upload.upload_id).complete
    assert client.get_bytes(f"{fs_root}/large.bin") == large.read_bytes()
    assert client.get_bytes(f"{fs_root}/small.txt") == b"small"
    assert client.head(f"{fs_root}/small.txt").content_type == "text/plain"


def test_put_of_a_tree_in_a_transaction_is_stored_at_its_end(
    gateway_fs: GatewayFileSystem, fs_root: str, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a")
    (tree / "sub" / "b.txt").write_bytes(b"bb")
    with gateway_fs.transaction:
        gateway_fs.put(str(tree), f"{fs_root}/", recursive=True)
        assert gateway_fs.find(fs_root) == []
    assert gateway_fs.cat(gateway_fs.find(fs_root)) == {
        f"{fs_root}/tree/a.txt": b"a",
        f"{fs_root}/tree/sub/b.txt": b"bb",
    }


def test_a_failed_transaction_discards_its_puts(
    gateway_fs: GatewayFileSystem, client: Client, fs_root: str, tmp_path: Path
) -> None:
    local = tmp_path / "large.bin"
    local.write_bytes(os.urandom(BLOCK_SIZE + 1))
    writes: list[DeferredWrite] = []

    def put_and_fail() -> None:
        with gateway_fs.transaction:
            gateway_fs.put_file(str(local), f"{fs_root}/large.bin")
            gateway_fs.pipe_file(f"{fs_root}/piped", b"piped")
            writes.extend(deferred(gateway_fs))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        put_and_fail()
    upload = writes[0].part.upload
    assert upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(upload.upload_id)
    assert gateway_fs.find(fs_root) == []


def test_a_file_changed_before_the_commit_is_not_stored(
    gateway_fs: GatewayFileSystem, client: Client, fs_root: str, tmp_path: Path
) -> None:
    local = tmp_path / "moving.bin"
    local.write_bytes(os.urandom(BLOCK_SIZE + 100))
    writes: list[DeferredWrite] = []

    def put_then_change() -> None:
        with gateway_fs.transaction:
            gateway_fs.put_file(str(local), f"{fs_root}/moving.bin")
            writes.extend(deferred(gateway_fs))
            with local.open("ab") as appended:
                appended.write(b"more")

    with pytest.raises(OSError, match="changed"):
        put_then_change()
    upload = writes[0].part.upload
    assert upload is not None
    with pytest.raises(UploadNotFound):
        client.query_upload(upload.upload_id)
    assert not client.exists(f"{fs_root}/moving.bin")


def test_a_large_pipe_in_a_transaction_streams_and_is_stored_at_its_end(
    gateway_fs: GatewayFileSystem, client: Client, fs_root: str
) -> None:
    data = os.urandom(2 * BLOCK_SIZE + 5)
    with gateway_fs.transaction:
        gateway_fs.pipe_file(f"{fs_root}/piped.bin", data)
        (write,) = deferred(gateway_fs)
        assert write.part.upload is not None
        assert not client.exists(f"{fs_root}/piped.bin")
    assert client.get_bytes(f"{fs_root}/piped.bin") == data

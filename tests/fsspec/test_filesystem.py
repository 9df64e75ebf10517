"""GatewayFileSystem beyond fsspec's abstract suite: what an object store
adds (directories from prefixes, ranged reads, uploads committed at close,
transactions) and how fsspec finds it, on a real gateway per driver."""

from __future__ import annotations

import importlib.metadata
import os

import fsspec
import pytest

from storagegw import Client, PreconditionFailed
from storagegw.fsspec import GatewayFileSystem
from tests.conftest import RunningGateway

MiB = 1024 * 1024


# ---------------------------------------------------------------- directories


def test_directories_are_the_prefixes_of_keys(gateway_fs: GatewayFileSystem, fs_root: str):
    fs = gateway_fs
    fs.pipe({f"{fs_root}/a.txt": b"a", f"{fs_root}/sub/b.txt": b"bb", f"{fs_root}/sub/deep/c": b""})
    fs.mkdir(f"{fs_root}/empty")  # object stores keep no empty directory

    assert fs.ls(fs_root, detail=False) == [f"{fs_root}/a.txt", f"{fs_root}/sub"]
    listing = {entry["name"]: entry for entry in fs.ls(f"{fs_root}/sub")}
    assert listing[f"{fs_root}/sub/b.txt"]["type"] == "file"
    assert listing[f"{fs_root}/sub/b.txt"]["size"] == 2
    assert listing[f"{fs_root}/sub/deep"]["type"] == "directory"
    assert fs.info(f"{fs_root}/sub")["type"] == "directory"
    assert fs.info(f"{fs_root}/a.txt")["type"] == "file"
    assert fs.isdir(fs_root)
    assert not fs.isfile(fs_root)
    assert fs.isfile(f"{fs_root}/a.txt")
    assert not fs.isdir(f"{fs_root}/a.txt")
    assert not fs.isdir(f"{fs_root}/missing")
    assert fs.isdir("")  # the bucket's root
    assert not fs.exists(f"{fs_root}/empty")
    assert not fs.exists(f"{fs_root}/su")  # a prefix of a name is not a directory
    assert fs.find(fs_root) == [f"{fs_root}/a.txt", f"{fs_root}/sub/b.txt", f"{fs_root}/sub/deep/c"]
    assert fs.find(fs_root, withdirs=True) == [
        fs_root,
        f"{fs_root}/a.txt",
        f"{fs_root}/sub",
        f"{fs_root}/sub/b.txt",
        f"{fs_root}/sub/deep",
        f"{fs_root}/sub/deep/c",
    ]
    assert fs.find(f"{fs_root}/a.txt") == [f"{fs_root}/a.txt"]
    assert fs.du(fs_root) == 3


def test_missing_paths_are_file_not_found(gateway_fs: GatewayFileSystem, fs_root: str):
    fs = gateway_fs
    for call in (fs.info, fs.cat_file, fs.ls, fs.rm_file):
        with pytest.raises(FileNotFoundError):
            call(f"{fs_root}/missing")
    with pytest.raises(FileNotFoundError):
        fs.open(f"{fs_root}/missing", "rb")
    with pytest.raises(FileNotFoundError):
        fs.cp_file(f"{fs_root}/missing", f"{fs_root}/copy")
    assert fs.find(f"{fs_root}/missing") == []


def test_a_directory_is_not_opened_for_reading(gateway_fs: GatewayFileSystem, fs_root: str):
    gateway_fs.pipe_file(f"{fs_root}/dir/file", b"x")
    with pytest.raises(IsADirectoryError):
        gateway_fs.open(f"{fs_root}/dir", "rb")


# ---------------------------------------------------------------- reading


def test_open_reads_ranges_ahead_of_the_reader(gateway_fs: GatewayFileSystem, fs_root: str):
    data = os.urandom(3 * MiB + 123)
    path = f"{fs_root}/big.bin"
    gateway_fs.pipe_file(path, data)

    with gateway_fs.open(path, "rb", block_size=256 * 1024) as file:
        pieces = [file.read(64 * 1024) for _ in range(16)]  # the first MiB, sequentially
        assert b"".join(pieces) == data[:MiB]
        # Read ahead: a fetch of a block's worth per 256 KiB of small reads,
        # each a ranged Get, never the whole object.
        assert file.cache.miss_count <= 5
        assert file.cache.total_requested_bytes < len(data)
        file.seek(2 * MiB + 5)
        assert file.read(1000) == data[2 * MiB + 5 : 2 * MiB + 1005]
        file.seek(-100, 2)
        assert file.read() == data[-100:]
        assert file.read(10) == b""
        file.seek(17)
        assert file.readline() == data[17:].split(b"\n", 1)[0] + b"\n"[: data[17:].count(b"\n")]


def test_an_object_replaced_while_open_is_an_error_not_a_mix(
    gateway_fs: GatewayFileSystem, fs_root: str
):
    path = f"{fs_root}/replaced"
    gateway_fs.pipe_file(path, b"a" * 100_000)
    with gateway_fs.open(path, "rb", block_size=1000, cache_type="none") as file:
        assert file.read(10) == b"a" * 10
        gateway_fs.pipe_file(path, b"b" * 100_000)
        with pytest.raises(OSError, match="if_generation_match") as caught:
            file.read(10)
    assert isinstance(caught.value.__cause__, PreconditionFailed)


@pytest.mark.parametrize(
    ("start", "end"),
    [(None, None), (0, 10), (5, None), (-10, None), (-10, -2), (3, -3), (90, 200), (200, 300)],
)
def test_cat_file_ranges_slice_as_python_does(
    gateway_fs: GatewayFileSystem, fs_root: str, start: int | None, end: int | None
):
    data = bytes(range(100))
    gateway_fs.pipe_file(f"{fs_root}/r", data)
    assert gateway_fs.cat_file(f"{fs_root}/r", start=start, end=end) == data[start:end]


def test_cat_of_many_files_returns_each(gateway_fs: GatewayFileSystem, fs_root: str):
    contents = {f"{fs_root}/many/{i:03}.txt": f"file {i}".encode() * i for i in range(60)}
    gateway_fs.pipe(contents)
    assert gateway_fs.cat(sorted(contents)) == contents
    assert gateway_fs.cat(f"{fs_root}/many/*.txt") == contents
    missing = f"{fs_root}/many/missing"
    with pytest.raises(FileNotFoundError):
        gateway_fs.cat([*contents, missing])
    found = gateway_fs.cat([*contents, missing], on_error="omit")
    assert found == contents


# ---------------------------------------------------------------- writing


def test_a_large_write_goes_through_a_resumable_upload_stored_at_close(
    gateway_fs: GatewayFileSystem, fs_gateway: RunningGateway, fs_root: str
):
    # Blocks of 256 KiB: the upload starts as the first fills (see test_streaming.py).
    data = os.urandom(3 * MiB + 5)
    path = f"{fs_root}/large.bin"
    with Client(fs_gateway.target) as client:
        with gateway_fs.open(path, "wb", block_size=256 * 1024) as file:
            for start in range(0, len(data), 100_000):
                file.write(data[start : start + 100_000])
            assert not gateway_fs.exists(path)
            assert not client.exists(path)
            assert file.upload is not None  # blocks sent, the upload not finished
            assert not client.query_upload(file.upload.upload_id).complete
        assert file.upload is not None
        status = client.query_upload(file.upload.upload_id)
        assert status.complete
        assert status.object is not None
        assert status.object.size == len(data)
        assert client.get_bytes(path) == data
    assert gateway_fs.cat_file(path) == data


def test_a_small_write_is_one_put(gateway_fs: GatewayFileSystem, fs_root: str):
    with gateway_fs.open(f"{fs_root}/small.json", "wb") as file:
        file.write(b'{"a": 1}')
    assert file.upload is None
    info = gateway_fs.info(f"{fs_root}/small.json")
    assert info["size"] == 8
    assert info["content_type"] == "application/json"


def test_a_write_left_by_an_exception_stores_nothing(gateway_fs: GatewayFileSystem, fs_root: str):
    def write_and_fail(size: int) -> None:
        with gateway_fs.open(f"{fs_root}/broken", "wb", block_size=256 * 1024) as file:
            file.write(os.urandom(size))
            raise RuntimeError("the writer failed")

    for size in (10, 2 * MiB):
        with pytest.raises(RuntimeError):
            write_and_fail(size)
        assert not gateway_fs.exists(f"{fs_root}/broken")


def test_exclusive_writes_refuse_an_existing_object(gateway_fs: GatewayFileSystem, fs_root: str):
    path = f"{fs_root}/once"
    with gateway_fs.open(path, "xb") as file:
        file.write(b"first")
    with pytest.raises(FileExistsError):
        gateway_fs.open(path, "xb")
    with pytest.raises(FileExistsError):
        gateway_fs.pipe_file(path, b"second", mode="create")
    with pytest.raises(FileExistsError):
        gateway_fs.put_file(__file__, path, mode="create")
    assert gateway_fs.cat_file(path) == b"first"


def test_append_is_refused(gateway_fs: GatewayFileSystem, fs_root: str):
    with pytest.raises(NotImplementedError):
        gateway_fs.open(f"{fs_root}/log", "ab")


def test_transaction_commits_its_files_at_the_end(gateway_fs: GatewayFileSystem, fs_root: str):
    big = os.urandom(2 * MiB)
    with gateway_fs.transaction:
        with gateway_fs.open(f"{fs_root}/t/big", "wb", block_size=256 * 1024) as file:
            file.write(big)
        gateway_fs.pipe_file(f"{fs_root}/t/small", b"small")
        assert gateway_fs.find(fs_root) == []
    assert gateway_fs.cat(f"{fs_root}/t/*") == {
        f"{fs_root}/t/big": big,
        f"{fs_root}/t/small": b"small",
    }


def test_transaction_discarded_on_error_leaves_nothing(gateway_fs: GatewayFileSystem, fs_root: str):

    def write_and_fail() -> None:
        with gateway_fs.transaction:
            with gateway_fs.open(f"{fs_root}/t/big", "wb", block_size=256 * 1024) as file:
                file.write(os.urandom(2 * MiB))
            with gateway_fs.open(f"{fs_root}/t/small", "wb") as file:
                file.write(b"small")
            gateway_fs.pipe_file(f"{fs_root}/t/piped", b"piped")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_and_fail()
    assert gateway_fs.find(fs_root) == []
    # The file system is out of the transaction: writes are stored at once again.
    gateway_fs.pipe_file(f"{fs_root}/after", b"x")
    assert gateway_fs.cat_file(f"{fs_root}/after") == b"x"


# ---------------------------------------------------------------- copies and deletes


def test_cp_file_copies_on_the_gateway(gateway_fs: GatewayFileSystem, fs_root: str):
    gateway_fs.pipe_file(f"{fs_root}/src.csv", b"a,b\n1,2\n")
    gateway_fs.cp_file(f"{fs_root}/src.csv", f"{fs_root}/dst/copy.csv")
    assert gateway_fs.cat_file(f"{fs_root}/dst/copy.csv") == b"a,b\n1,2\n"
    gateway_fs.mv(f"{fs_root}/dst/copy.csv", f"{fs_root}/moved.csv")
    assert gateway_fs.find(fs_root) == [f"{fs_root}/moved.csv", f"{fs_root}/src.csv"]


def test_rm_of_a_tree_deletes_every_key_under_it_and_nothing_else(
    gateway_fs: GatewayFileSystem, fs_root: str
):
    tree = {f"{fs_root}/tree/{i % 4}/{i % 3}/f{i}": b"x" for i in range(80)}
    beside = {f"{fs_root}/tree.txt": b"keep", f"{fs_root}/tree2/f": b"keep"}
    gateway_fs.pipe({**tree, **beside})
    gateway_fs.rm(f"{fs_root}/tree", recursive=True)
    assert gateway_fs.find(fs_root) == sorted(beside)
    assert not gateway_fs.exists(f"{fs_root}/tree")
    gateway_fs.rm(sorted(beside))
    assert gateway_fs.find(fs_root) == []


# ---------------------------------------------------------------- how fsspec finds it


def test_the_protocol_is_registered_by_the_entry_point(fs_gateway: RunningGateway, fs_root: str):
    specs = importlib.metadata.entry_points(group="fsspec.specs")
    assert specs["storagegw"].value == "storagegw.fsspec:GatewayFileSystem"
    fs = fsspec.filesystem("storagegw", target=fs_gateway.target, bucket="default")
    assert isinstance(fs, GatewayFileSystem)
    fs.pipe_file(f"{fs_root}/hello.txt", b"hello")

    url = f"storagegw://default/{fs_root}/hello.txt"
    with fsspec.open(url, "rb", target=fs_gateway.target) as file:
        assert file.read() == b"hello"
    with fsspec.open(f"storagegw:///{fs_root}/t.txt", "w", target=fs_gateway.target) as text:
        text.write("written through a URL of the default bucket")
    assert fs.cat_file(f"{fs_root}/t.txt") == b"written through a URL of the default bucket"
    assert fs.unstrip_protocol(f"{fs_root}/hello.txt") == url
    opened, path = fsspec.core.url_to_fs(url, target=fs_gateway.target)
    assert isinstance(opened, GatewayFileSystem)
    assert (opened.bucket, path) == ("default", f"{fs_root}/hello.txt")


def test_a_url_of_a_missing_bucket_is_not_found(fs_gateway: RunningGateway):
    with pytest.raises(FileNotFoundError):
        fsspec.open("storagegw://nosuchbucket/k", "rb", target=fs_gateway.target).open()

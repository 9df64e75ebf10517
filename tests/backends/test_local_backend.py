"""Driver-level tests of the local backend, on a real directory."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
import time
import unicodedata
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.backends.local import format as local_format
from gateway.backends.local import io as local_io
from gateway.backends.local.backend import LocalBackend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.keys import validate_key
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, ObjectMeta, WriteOptions
from tests.drivers import get, list_all, put, sums, utf8

# More than a writer keeps in memory: its temp file exists before commit.
BIG = local_io.WRITE_BUFFER_LIMIT + 1


def tmp_files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "tmp"))


def object_files(root: Path) -> list[str]:
    found = []
    for directory, _, files in os.walk(root / "objects"):
        for name in files:
            found.append(os.path.relpath(os.path.join(directory, name), root / "objects"))
    return sorted(found)


async def expect(reason: Reason, awaitable: object) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.reason is reason, caught.value
    return caught.value


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path)


async def test_is_a_backend(backend: LocalBackend, tmp_path: Path) -> None:
    assert backend.capabilities.presigner is None  # the gateway signs its URLs
    assert backend.capabilities.upload_counter is not None
    assert backend.kind == "local"
    assert (tmp_path / "objects").is_dir()
    assert (tmp_path / "tmp").is_dir()
    await backend.probe()
    await backend.close()


@pytest.mark.parametrize("size", [0, 1, 4096, 300_001])
async def test_round_trip(backend: LocalBackend, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    options = WriteOptions(content_type="image/png", metadata={"owner": "ünï", "x": ""})
    meta = await put(backend, "photos/2024/p.png", data, options)
    assert meta.size == size
    assert meta.etag == hashlib.sha256(data).hexdigest()[:32]
    assert (meta.crc32c, meta.sha256) == (crc32c(data), hashlib.sha256(data).digest())
    assert meta.content_type == "image/png"
    assert dict(meta.metadata) == {"owner": "ünï", "x": ""}
    assert await backend.head("photos/2024/p.png") == meta
    assert await get(backend, "photos/2024/p.png") == data
    assert await get(backend, "photos/2024/p.png", size // 3, 100) == data[size // 3 :][:100]
    assert await get(backend, "photos/2024/p.png", -10) == data[-10:]
    assert tmp_files(tmp_path) == []
    # Another backend on the same directory (a restart) sees the same object.
    assert await LocalBackend(tmp_path).head("photos/2024/p.png") == meta


async def test_file_layout(backend: LocalBackend, tmp_path: Path) -> None:
    meta = await put(backend, "a/b", b"hello", WriteOptions(metadata={"k": "v"}))
    raw = (tmp_path / "objects" / "a" / "b").read_bytes()
    assert raw[:4] == b"SGW1"
    length = int.from_bytes(raw[4:8], "big")
    header = json.loads(raw[8 : 8 + length])
    assert raw[8 + length :] == b"hello"
    assert header["size"] == 5
    assert header["etag"] == meta.etag
    assert header["generation"] == meta.generation
    assert header["metadata"] == {"k": "v"}
    assert header["sha256"] == hashlib.sha256(b"hello").hexdigest()


async def test_missing_and_bad_range(backend: LocalBackend) -> None:
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("nope"))
    await expect(Reason.OBJECT_NOT_FOUND, backend.open_read("nope/deeper", 0, None, Conditions()))
    await put(backend, "k", b"abc")
    await expect(Reason.INVALID_RANGE, backend.open_read("k", 4, None, Conditions()))
    # A key under an object, or naming a directory, is not an object either.
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("k/under"))
    await put(backend, "d/x", b"")
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("d"))
    await expect(Reason.OBJECT_NOT_FOUND, backend.open_read("d", 0, None, Conditions()))


@pytest.mark.parametrize("size", [7, BIG])
async def test_abort_leaves_nothing(backend: LocalBackend, tmp_path: Path, size: int) -> None:
    writer = await backend.open_write("k", WriteOptions())
    await writer.write(os.urandom(size))
    # Only a write too big to keep in memory has a temp file before commit.
    assert len(tmp_files(tmp_path)) == (size == BIG)
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("k"))
    await writer.abort()
    await writer.abort()  # idempotent
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == []
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("k"))


async def test_failed_commit_leaves_nothing(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "k", b"old")
    options = WriteOptions(conditions=Conditions(if_match="not-the-etag"))
    writer = await backend.open_write("k", options)
    await writer.write(b"new")
    await expect(Reason.PRECONDITION_FAILED, writer.commit(sums(b"new")))
    await writer.abort()  # safe after a failed commit
    assert tmp_files(tmp_path) == []
    assert await get(backend, "k") == b"old"


async def test_leftover_temp_files_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "crashed.tmp").write_bytes(b"half an upload")
    (tmp_path / "tmp" / "junk").mkdir()
    (tmp_path / "tmp" / "junk" / "f").write_bytes(b"")
    backend = LocalBackend(tmp_path)
    assert tmp_files(tmp_path) == []
    assert (await backend.list(ListQuery(page_size=10))).objects == []


async def test_start_spares_temp_files_of_live_writers(tmp_path: Path) -> None:
    first = LocalBackend(tmp_path)
    writer = await first.open_write("k", WriteOptions())
    data = os.urandom(BIG)
    await writer.write(data)
    # A second gateway starting on the same root must not break this write.
    LocalBackend(tmp_path)
    assert len(tmp_files(tmp_path)) == 1
    await writer.commit(sums(data))
    assert await get(first, "k") == data


async def test_reader_survives_delete_and_replace(backend: LocalBackend) -> None:
    old = os.urandom(10_000)
    await put(backend, "k", old)
    before_delete = await backend.open_read("k", 0, None, Conditions())
    before_replace = await backend.open_read("k", 5000, None, Conditions())
    assert await backend.delete("k")
    await put(backend, "k", b"new bytes")
    await put(backend, "k", b"newer bytes")
    assert b"".join([c async for c in before_delete.chunks(777)]) == old
    assert b"".join([c async for c in before_replace.chunks(777)]) == old[5000:]
    assert before_delete.meta.size == len(old)
    await before_delete.close()
    await before_replace.close()
    assert await get(backend, "k") == b"newer bytes"


async def test_concurrent_writers_last_commit_wins(backend: LocalBackend, tmp_path: Path) -> None:
    one_data, two_data = os.urandom(50_000), os.urandom(60_000)
    one = await backend.open_write("k", WriteOptions(metadata={"who": "one"}))
    two = await backend.open_write("k", WriteOptions(metadata={"who": "two"}))
    for i in range(0, 60_000, 10_000):
        await asyncio.gather(
            one.write(one_data[i : i + 10_000]), two.write(two_data[i : i + 10_000])
        )
    metas = await asyncio.gather(one.commit(sums(one_data)), two.commit(sums(two_data)))
    last = max(metas, key=lambda meta: meta.generation)
    assert metas[0].generation != metas[1].generation
    head = await backend.head("k")
    assert head == last
    expected = one_data if last.metadata["who"] == "one" else two_data
    assert await get(backend, "k") == expected
    assert tmp_files(tmp_path) == []


async def test_create_only_race_has_one_winner(backend: LocalBackend, tmp_path: Path) -> None:
    writers = []
    for i in range(4):
        conditions = Conditions(if_none_match="*") if i % 2 else Conditions(if_generation_match=0)
        writer = await backend.open_write("k", WriteOptions(conditions=conditions))
        await writer.write(b"writer %d" % i)
        writers.append(writer)
    results = await asyncio.gather(
        *(w.commit(sums(b"writer %d" % i)) for i, w in enumerate(writers)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ObjectMeta)]
    losers = [r for r in results if isinstance(r, GatewayError)]
    assert len(winners) == 1
    assert len(losers) == 3
    assert all(error.reason is Reason.PRECONDITION_FAILED for error in losers)
    assert await backend.head("k") == winners[0]
    assert await get(backend, "k") == b"writer %d" % results.index(winners[0])
    assert tmp_files(tmp_path) == []


async def test_create_only_install_refuses_an_existing_file(tmp_path: Path) -> None:
    # Another process created the key after this one checked the conditions:
    # the link that installs a create-only write fails instead of replacing.
    this, other = LocalBackend(tmp_path), LocalBackend(tmp_path)
    options = WriteOptions(conditions=Conditions(if_none_match="*"))
    writer = await this.open_write("k", options)
    await writer.write(os.urandom(BIG))
    await put(other, "k", b"first")
    tmp = tmp_path / "tmp" / tmp_files(tmp_path)[0]
    with pytest.raises(GatewayError) as caught:
        this._install("k", str(tmp), this._path("k"), "if_none_match")
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert tmp.exists()
    await writer.abort()
    assert await get(this, "k") == b"first"


async def test_key_conflict_object_then_deeper_key(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "a", b"file a")
    for key in ("a/b", "a/b/c"):
        error = await expect(Reason.KEY_CONFLICT, put(backend, key, b"x"))
        assert "'a' is an object" in error.message
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == ["a"]
    assert await get(backend, "a") == b"file a"


async def test_key_conflict_prefix_then_object(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "x/y", b"under x")
    for conditions in (Conditions(), Conditions(if_none_match="*")):
        error = await expect(
            Reason.KEY_CONFLICT, put(backend, "x", b"x", WriteOptions(conditions=conditions))
        )
        assert "prefix of existing objects" in error.message
    assert tmp_files(tmp_path) == []
    assert await get(backend, "x/y") == b"under x"


async def test_copy_key_conflict(backend: LocalBackend) -> None:
    await put(backend, "a", b"a")
    await expect(Reason.KEY_CONFLICT, backend.copy(CopyRequest("a", "a/copy")))


async def test_empty_parent_directories_removed_after_delete(
    backend: LocalBackend, tmp_path: Path
) -> None:
    await put(backend, "d1/d2/d3/k", b"deep")
    await put(backend, "d1/other", b"sibling")
    assert await backend.delete("d1/d2/d3/k") is True
    assert not (tmp_path / "objects" / "d1" / "d2").exists()
    assert (tmp_path / "objects" / "d1").is_dir()
    assert await backend.delete("d1/other") is True
    assert not (tmp_path / "objects" / "d1").exists()
    assert (tmp_path / "objects").is_dir()
    assert await backend.delete("d1/other") is False
    # The freed names can be objects now.
    await put(backend, "d1", b"now a file")
    assert await get(backend, "d1") == b"now a file"


def record_dir_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Wrap local_format.fsync_dir to record, for each call, the directory
    and its entries at that moment; the fsync itself still happens."""
    calls: list[tuple[str, list[str]]] = []
    real = local_format.fsync_dir

    def fsync_dir(path: str) -> None:
        calls.append((path, sorted(os.listdir(path))))
        real(path)

    monkeypatch.setattr(local_format, "fsync_dir", fsync_dir)
    return calls


def assert_creations_fsynced(
    calls: list[tuple[str, list[str]]], objects: str, created: list[str]
) -> None:
    """Each directory in created (relative to objects) is on disk, and its
    parent was fsynced once it held the directory's entry."""
    for relative in created:
        directory = os.path.join(objects, relative)
        assert os.path.isdir(directory), relative
        parent, name = os.path.split(directory)
        assert any(path == parent and name in entries for path, entries in calls), (
            f"{parent} not fsynced after {name} was created in it: {calls}"
        )


async def test_new_directories_of_a_deep_key_are_durable(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    await put(backend, "a/b/c/obj", b"deep")
    assert_creations_fsynced(calls, objects, ["a", "a/b", "a/b/c"])
    assert await get(backend, "a/b/c/obj") == b"deep"
    # Under a partly existing path only the missing levels are created.
    calls.clear()
    await put(backend, "a/b/x/y/obj", b"deeper")
    assert_creations_fsynced(calls, objects, ["a/b/x", "a/b/x/y"])
    assert not any(path in (objects, os.path.join(objects, "a")) for path, _ in calls)
    assert object_files(tmp_path) == ["a/b/c/obj", "a/b/x/y/obj"]


async def test_directory_made_by_a_concurrent_creator_is_accepted(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    real_mkdir = os.mkdir

    def mkdir_after_another(path: str, *args: int) -> None:
        # Another writer creates the directory first: this mkdir then fails.
        if path.startswith(objects + os.sep):
            real_mkdir(path)
        real_mkdir(path, *args)

    monkeypatch.setattr(local_format.os, "mkdir", mkdir_after_another)
    await put(backend, "p/q/obj", b"x")
    monkeypatch.undo()
    assert_creations_fsynced(calls, objects, ["p", "p/q"])
    assert await get(backend, "p/q/obj") == b"x"


async def test_directory_removed_by_a_concurrent_delete_is_recreated(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    real_mkdir = os.mkdir
    removed: list[str] = []

    def mkdir_racing_a_delete(path: str, *args: int) -> None:
        # The first time: a delete removes the just created, still empty,
        # parent before its child is made.
        if not removed and path == os.path.join(objects, "r", "s"):
            removed.append(os.path.dirname(path))
            os.rmdir(os.path.dirname(path))
        real_mkdir(path, *args)

    monkeypatch.setattr(local_format.os, "mkdir", mkdir_racing_a_delete)
    await put(backend, "r/s/obj", b"x")
    monkeypatch.undo()
    assert removed == [os.path.join(objects, "r")]
    assert await get(backend, "r/s/obj") == b"x"


async def test_concurrent_deep_puts_share_directories(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    keys = [f"s/t/u{i % 3}/k{i}" for i in range(24)]
    await asyncio.gather(*(put(backend, key, key.encode()) for key in keys))
    assert_creations_fsynced(calls, objects, ["s", "s/t", "s/t/u0", "s/t/u1", "s/t/u2"])
    assert object_files(tmp_path) == sorted(keys)
    assert tmp_files(tmp_path) == []


async def test_delete_of_a_prefix_is_not_an_object(backend: LocalBackend) -> None:
    await put(backend, "p/q", b"")
    assert await backend.delete("p") is False
    assert await backend.delete("p/q/r") is False
    assert (await backend.head("p/q")).size == 0


async def test_generation_increases(backend: LocalBackend) -> None:
    generations = [(await put(backend, "k", b"%d" % i)).generation for i in range(20)]
    assert generations == sorted(set(generations))


async def test_long_segment_is_an_invalid_key(backend: LocalBackend) -> None:
    long_key = "dir/" + "é" * 128  # 256 bytes in UTF-8
    await expect(Reason.INVALID_KEY, backend.open_write(long_key, WriteOptions()))
    ok = "dir/" + "e" * 255
    await put(backend, ok, b"fits")
    assert await get(backend, ok) == b"fits"


@pytest.mark.parametrize("option", ["storage_class", "server_side_encryption", "kms_key_id"])
async def test_unsupported_options(backend: LocalBackend, tmp_path: Path, option: str) -> None:
    options = WriteOptions(**{option: "x"})  # type: ignore[arg-type]
    error = await expect(Reason.UNSUPPORTED_OPTION, backend.open_write("k", options))
    assert error.metadata == {"option": option, "backend": "local"}
    assert tmp_files(tmp_path) == []


async def test_copy(backend: LocalBackend, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    source = await put(
        backend, "src", data, WriteOptions(content_type="text/x", metadata={"m": "1"})
    )
    kept = await backend.copy(
        CopyRequest("src", "dir/kept", options=WriteOptions(content_type="ignored/x"))
    )
    assert (kept.content_type, dict(kept.metadata)) == ("text/x", {"m": "1"})
    assert (kept.size, kept.etag, kept.crc32c, kept.sha256) == (
        source.size,
        source.etag,
        source.crc32c,
        source.sha256,
    )
    assert await get(backend, "dir/kept") == data
    replaced = await backend.copy(
        CopyRequest(
            "src",
            "replaced",
            options=WriteOptions(content_type="a/b", metadata={}),
            replace_metadata=True,
        )
    )
    assert (replaced.content_type, dict(replaced.metadata)) == ("a/b", {})
    assert await backend.head("replaced") == replaced
    create_only = WriteOptions(conditions=Conditions(if_none_match="*"))
    await expect(
        Reason.PRECONDITION_FAILED,
        backend.copy(CopyRequest("src", "replaced", options=create_only, replace_metadata=True)),
    )
    await expect(
        Reason.PRECONDITION_FAILED,
        backend.copy(CopyRequest("src", "x", source_conditions=Conditions(if_match="nope"))),
    )
    await expect(Reason.OBJECT_NOT_FOUND, backend.copy(CopyRequest("missing", "x")))
    # Over itself.
    again = await backend.copy(CopyRequest("src", "src"))
    assert again.generation > source.generation
    assert await get(backend, "src") == data
    assert tmp_files(tmp_path) == []


async def test_probe_reports_a_broken_root(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    await backend.probe()
    (tmp_path / "objects").rmdir()
    (tmp_path / "objects").write_bytes(b"not a directory")
    error = await expect(Reason.BACKEND_UNAVAILABLE, backend.probe())
    assert "not a directory" in error.message


# Small objects: kept in memory, one thread hop, one file fsync.


def parse_object_file(raw: bytes) -> tuple[dict[str, object], bytes]:
    """(header JSON, data) of the bytes of an object file."""
    assert raw[:4] == b"SGW1"
    length = int.from_bytes(raw[4:8], "big")
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


async def test_small_write_touches_no_file_before_commit(
    backend: LocalBackend, tmp_path: Path
) -> None:
    data = os.urandom(6000)
    options = WriteOptions(content_type="text/x", metadata={"who": "me"})
    writer = await backend.open_write("d/small", options)
    for i in range(0, len(data), 2000):
        await writer.write(data[i : i + 2000])
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == []
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("d/small"))
    meta = await writer.commit(sums(data))
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == ["d/small"]
    header, stored = parse_object_file((tmp_path / "objects" / "d" / "small").read_bytes())
    assert stored == data
    assert header["size"] == len(data) == meta.size
    assert header["generation"] == meta.generation
    assert header["sha256"] == hashlib.sha256(data).hexdigest()
    assert (header["content_type"], header["metadata"]) == ("text/x", {"who": "me"})
    assert await backend.head("d/small") == meta
    assert (meta.content_type, dict(meta.metadata)) == ("text/x", {"who": "me"})
    assert await get(backend, "d/small") == data


async def test_write_crossing_the_buffer_limit(backend: LocalBackend, tmp_path: Path) -> None:
    first, second = os.urandom(200 * 1024), os.urandom(200 * 1024)
    writer = await backend.open_write("k", WriteOptions(metadata={"m": "1"}))
    await writer.write(first)
    assert tmp_files(tmp_path) == []
    await writer.write(second)
    # Past the limit the temp file holds a placeholder header and all the data.
    [name] = tmp_files(tmp_path)
    raw = (tmp_path / "tmp" / name).read_bytes()
    length = int.from_bytes(raw[4:8], "big")
    assert raw[:4] == b"SGW1"
    assert raw[8 : 8 + length] == b" " * length
    assert raw[8 + length :] == first + second
    meta = await writer.commit(sums(first + second))
    assert tmp_files(tmp_path) == []
    header, stored = parse_object_file((tmp_path / "objects" / "k").read_bytes())
    assert stored == first + second
    assert (header["size"], header["metadata"]) == (meta.size, {"m": "1"})
    assert await backend.head("k") == meta
    assert await get(backend, "k") == first + second


@pytest.mark.parametrize("abort", ["before its thread starts", "while its thread writes"])
async def test_abort_during_a_write_to_disk_leaves_nothing(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abort: str
) -> None:
    early = abort == "before its thread starts"
    real_to_thread = asyncio.to_thread

    async def late_to_thread(func: Any, /, *args: Any) -> Any:
        def late() -> Any:
            time.sleep(0.05 if early else 0)
            return func(*args)

        return await real_to_thread(late)

    monkeypatch.setattr(asyncio, "to_thread", late_to_thread)
    writer = await backend.open_write("k", WriteOptions())
    task = asyncio.ensure_future(writer.write(b"x" * (BIG if early else 64 * 1024 * 1024)))
    await asyncio.sleep(0)
    while not early and not tmp_files(tmp_path):
        await asyncio.sleep(0.001)  # the file is there, its data on the way
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await writer.abort()
    # The abandoned thread must not leave a file behind, even finishing late.
    for _ in range(20):
        assert tmp_files(tmp_path) == []
        await asyncio.sleep(0.01)
    await expect(Reason.INTERNAL, writer.write(b"x"))


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, object]]:
    """Wrap os.fsync to record, for each call: ("file", path, its bytes) or
    ("dir", path, its entries) at that moment; the fsync still happens."""
    calls: list[tuple[str, str, object]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            calls.append(("dir", path, sorted(os.listdir(path))))
        else:
            with open(f"/proc/self/fd/{fd}", "rb") as file:
                calls.append(("file", path, file.read()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize("size", [4096, 3 * local_io.WRITE_BUFFER_LIMIT])
async def test_put_fsyncs_the_final_file_once_then_its_directory(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    await put(backend, "d/first", b"")  # d exists: the Put below creates no directory
    calls = record_fsyncs(monkeypatch)
    data = os.urandom(size)
    meta = await put(backend, "d/k", data, WriteOptions(metadata={"m": "v"}), chunk=64 * 1024)
    monkeypatch.undo()
    assert [kind for kind, _, _ in calls] == ["file", "dir"]
    # The file was fsynced in root/tmp, holding every final byte, header included.
    _, file_path, content = calls[0]
    assert os.path.dirname(file_path) == os.path.realpath(tmp_path / "tmp")
    assert content == (tmp_path / "objects" / "d" / "k").read_bytes()
    header, _ = parse_object_file(content)  # type: ignore[arg-type]
    assert header["generation"] == meta.generation
    # Then its directory, once it held the object.
    _, dir_path, entries = calls[1]
    assert dir_path == os.path.realpath(tmp_path / "objects" / "d")
    assert entries == ["first", "k"]


def count_thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wrap asyncio.to_thread to record the name of each function it runs."""
    calls: list[str] = []
    real = asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    return calls


async def test_small_operations_take_one_thread_hop(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(4096)
    await put(backend, "k", b"warm-up")
    hops = count_thread_hops(monkeypatch)
    await put(backend, "k", data)
    assert len(hops) == 1, hops
    hops.clear()
    assert await get(backend, "k") == data
    assert len(hops) == 1, hops
    hops.clear()
    await backend.head("k")
    assert len(hops) == 1, hops
    hops.clear()
    writer = await backend.open_write("other", WriteOptions())
    await writer.write(data)
    await writer.abort()
    assert hops == []
    assert await backend.delete("k")
    assert len(hops) == 1, hops
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == []


def fds_on(path: Path) -> int:
    """How many of this process's fds are open on the file at path (or that
    was there before being replaced)."""
    names = {os.path.realpath(path), os.path.realpath(path) + " (deleted)"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}") in names
    return count


async def test_small_read_holds_no_file_open(backend: LocalBackend, tmp_path: Path) -> None:
    small, big = os.urandom(4096), os.urandom(3 * local_io.READ_PREFETCH)
    await put(backend, "small", small)
    await put(backend, "big", big, chunk=1024 * 1024)
    reader = await backend.open_read("small", 0, None, Conditions())
    assert fds_on(tmp_path / "objects" / "small") == 0
    # Still pinned: the object's bytes were read with its header.
    await put(backend, "small", b"replaced")
    assert b"".join([c async for c in reader.chunks(1000)]) == small
    await reader.close()
    await reader.close()
    # A small range of a big object is read whole at once too.
    reader = await backend.open_read("big", 1000, 5000, Conditions())
    assert fds_on(tmp_path / "objects" / "big") == 0
    assert b"".join([c async for c in reader.chunks(1000)]) == big[1000:6000]
    await reader.close()


async def test_large_read_streams_then_closes(backend: LocalBackend, tmp_path: Path) -> None:
    data = os.urandom(3 * local_io.READ_PREFETCH + 5)
    await put(backend, "big", data, chunk=1024 * 1024)
    path = tmp_path / "objects" / "big"
    reader = await backend.open_read("big", 10, None, Conditions())
    assert fds_on(path) == 1
    await put(backend, "big", b"replaced")  # the open fd pins the old bytes
    chunks = [c async for c in reader.chunks(100_000)]
    assert b"".join(chunks) == data[10:]
    assert max(len(c) for c in chunks) == 100_000
    assert fds_on(path) == 1
    await reader.close()
    await reader.close()
    assert fds_on(path) == 0
    assert [c async for c in reader.chunks(100_000)] == []  # nothing after close


def make_keys() -> list[str]:
    """~300 keys with no key equal to a directory of another, mixing the
    bytes around '/' (0x2F): '-' 0x2D, '.' 0x2E, '0' 0x30, and non-ASCII."""
    files = ["a.b", "a0", "a-", "ab", "B", "é.x", "éa", "日本語", "z\U0001f600"]
    dirs = ["a", "é", "日本", "\U0001f600", "x.y"]
    keys = set(files)
    for i in range(60):
        top = dirs[i % len(dirs)]
        keys.add(f"{top}/{files[i % len(files)]}{i}")
        keys.add(f"{top}/{dirs[(i // 5) % len(dirs)]}/{i}")
        keys.add(f"{top}/{dirs[(i // 5) % len(dirs)]}-{i}")
        keys.add(f"{top}/{i}/{files[i % len(files)]}")
        keys.add(f"{top}{i}")
    for key in keys:
        validate_key(key)
    # Keys that are also directories of other keys cannot exist on a filesystem.
    return sorted(k for k in keys if not any(o.startswith(k + "/") for o in keys))


@pytest.fixture
async def populated(backend: LocalBackend) -> tuple[LocalBackend, list[str]]:
    keys = make_keys()
    for key in keys:
        await put(backend, key, key.encode())
    return backend, keys


async def test_listing_order_is_bytewise(
    populated: tuple[LocalBackend, list[str]], tmp_path: Path
) -> None:
    backend, keys = populated
    assert len(keys) >= 280
    expected = sorted(keys, key=utf8)
    # A naive per-directory sort would put "a/..." before "a-", "a.b".
    assert (
        expected.index("a-")
        < expected.index("a.b")
        < expected.index("a/0/a.b")
        < (expected.index("a0"))
    )
    writer = await backend.open_write("in-flight", WriteOptions())
    await writer.write(os.urandom(BIG))
    assert tmp_files(tmp_path)
    page = await backend.list(ListQuery(page_size=10_000))
    assert [meta.key for meta in page.objects] == expected
    assert page.next_page_token == ""
    assert page.objects[0] == await backend.head(expected[0])
    await writer.abort()


async def test_pagination_covers_every_key_once(
    populated: tuple[LocalBackend, list[str]],
) -> None:
    backend, keys = populated
    expected = sorted(keys, key=utf8)
    for page_size in (1, 7, 50):
        listed, _ = await list_all(backend, page_size=page_size)
        assert listed == expected


async def test_delimiter_gives_common_prefixes(
    populated: tuple[LocalBackend, list[str]],
) -> None:
    backend, keys = populated
    listed, prefixes = await list_all(backend, delimiter="/", page_size=4)
    assert listed == sorted((k for k in keys if "/" not in k), key=utf8)
    assert prefixes == sorted({k.split("/")[0] + "/" for k in keys if "/" in k}, key=utf8)
    listed, prefixes = await list_all(backend, prefix="a/", delimiter="/", page_size=3)
    under = [k[2:] for k in keys if k.startswith("a/")]
    assert listed == sorted((f"a/{k}" for k in under if "/" not in k), key=utf8)
    assert prefixes == sorted({"a/" + k.split("/")[0] + "/" for k in under if "/" in k}, key=utf8)
    assert listed
    assert prefixes


@pytest.mark.parametrize("prefix", ["a", "a/", "a/a", "é", "日本/", "x.y/é/", "nothing", "a.b/"])
async def test_prefix_listing(populated: tuple[LocalBackend, list[str]], prefix: str) -> None:
    backend, keys = populated
    listed, _ = await list_all(backend, prefix=prefix, page_size=9)
    assert listed == sorted((k for k in keys if k.startswith(prefix)), key=utf8)


async def test_start_after(populated: tuple[LocalBackend, list[str]]) -> None:
    backend, keys = populated
    expected = sorted(keys, key=utf8)
    for start_after in (expected[0], "a", "a/", "a/é", expected[150], "日", expected[-1]):
        page = await backend.list(ListQuery(page_size=10_000, start_after=start_after))
        assert [m.key for m in page.objects] == [k for k in expected if utf8(k) > utf8(start_after)]


async def test_listing_skips_foreign_files(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "real", b"")
    (tmp_path / "objects" / "stray").write_bytes(b"not an object file")
    os.symlink(tmp_path / "objects" / "real", tmp_path / "objects" / "link")
    page = await backend.list(ListQuery(page_size=100))
    assert [meta.key for meta in page.objects] == ["real"]
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("link"))


segment = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/\\"
        ),
        min_size=1,
        max_size=12,
    ).map(lambda text: unicodedata.normalize("NFC", text))
    | st.sampled_from([".", "..", "...", "~", ".hidden", "é", "e\u0301", "/", "a/../b", " "])
    | st.text(alphabet="é日\U0001f600x", min_size=60, max_size=90)
)


def test_paths_stay_inside_objects(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    objects = os.path.realpath(tmp_path / "objects")

    @settings(max_examples=500, suppress_health_check=[HealthCheck.filter_too_much])
    @given(st.lists(segment, min_size=1, max_size=5).map("/".join))
    def check(key: str) -> None:
        try:
            validate_key(key)
        except GatewayError:
            assume(False)
        if max(len(part.encode()) for part in key.split("/")) > 255:
            with pytest.raises(GatewayError) as caught:
                backend._path(key)
            assert caught.value.reason is Reason.INVALID_KEY
            return
        path = backend._path(key)
        assert os.path.commonpath([objects, path]) == objects
        assert path != objects
        assert os.path.relpath(path, objects) == key

    check()


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "..", "/etc/passwd", "a/../b", "a//b", "./a", "a/"]
)
def test_path_refuses_keys_that_escape(tmp_path: Path, key: str) -> None:
    # Keys are validated before drivers see them; this is defence in depth.
    backend = LocalBackend(tmp_path)
    with pytest.raises(GatewayError) as caught:
        backend._path(key)
    assert caught.value.reason is Reason.INVALID_KEY


# --- files the gateway did not write, over gRPC ------------------------------------


def _header_file(doc: dict[str, Any] | bytes, data: bytes = b"") -> bytes:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return local_format.MAGIC + len(raw).to_bytes(4, "big") + raw + data


_GOOD_DOC: dict[str, Any] = {
    "content_type": "text/plain",
    "metadata": {},
    "size": 4,
    "etag": "e",
    "generation": 1,
    "crc32c": None,
    "sha256": "00" * 32,
    "create_time_ns": 1,
    "update_time_ns": 1,
}

FOREIGN_FILES = {
    "foreign": b"someone else's notes",
    "empty": b"",
    "bad-magic": b"SGW2" + b"\x00" * 20,
    "huge-header-length": local_format.MAGIC + b"\xff\xff\xff\xff",
    "truncated-header": local_format.MAGIC + b"\x00\x00\x01\x00{",
    "not-json": _header_file(b"{not json"),
    "header-not-an-object": _header_file(b"[1, 2]"),
    "shorter-than-header-says": _header_file(_GOOD_DOC, b"ab"),
    "no-sha256": _header_file({**_GOOD_DOC, "sha256": None}, b"abcd"),
    "negative-size": _header_file({**_GOOD_DOC, "size": -1}),
    "lone-surrogate": _header_file(
        b'{"content_type":"\\udc80","metadata":{},"size":0,"etag":"e","generation":1,'
        b'"sha256":"' + b"00" * 32 + b'","create_time_ns":1,"update_time_ns":1}'
    ),
}


@pytest.fixture
def grpc_stub(local_gateway: Any) -> Any:
    import grpc

    from storagegw.v1 import storage_pb2_grpc

    with grpc.insecure_channel(local_gateway.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


@pytest.mark.parametrize("name", sorted(FOREIGN_FILES))
def test_foreign_and_damaged_files_are_no_objects_to_every_call(
    local_gateway: Any, grpc_stub: Any, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """Head, Get, List and Delete agree: such a file is no object. Nothing
    answers INTERNAL or shows a server path; the log names the file."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import call_error
    from tests.rpc_calls import put as rpc_put

    objects = local_gateway.data_dir / "default" / "objects"
    rpc_put(grpc_stub, "real", b"real")
    stray = objects / name
    stray.write_bytes(FOREIGN_FILES[name])
    with caplog.at_level(logging.WARNING, logger="gateway.backends.local.format"):
        for call, request in [
            (grpc_stub.Head, pb.HeadRequest(key=name)),
            (grpc_stub.Get, pb.GetRequest(key=name)),
            (
                grpc_stub.Copy,
                pb.CopyRequest(source_key=name, destination_key="copy"),
            ),
        ]:
            code, reason, message = call_error(call, request)
            assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
            assert str(local_gateway.data_dir) not in message
        listed = grpc_stub.List(pb.ListRequest())
        assert [o.key for o in listed.objects] == ["real"]
        assert grpc_stub.Delete(pb.DeleteRequest(key=name)).existed is False
        assert stray.read_bytes() == FOREIGN_FILES[name]  # left alone
        conditional = pb.DeleteRequest(key=name, preconditions=pb.Preconditions(if_match="*"))
        code, reason, _ = call_error(grpc_stub.Delete, conditional)
        assert reason in ("PRECONDITION_FAILED", "OBJECT_NOT_FOUND")
        assert code != grpc.StatusCode.INTERNAL
    assert any(str(stray) in record.getMessage() for record in caplog.records)
    # A Put to the key replaces the file with an object.
    rpc_put(grpc_stub, name, b"now an object")
    assert grpc_stub.Head(pb.HeadRequest(key=name)).object.size == len(b"now an object")


def test_a_fifo_in_the_root_is_no_object(local_gateway: Any, grpc_stub: Any) -> None:
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import error_reason

    objects = local_gateway.data_dir / "default" / "objects"
    os.mkfifo(objects / "fifo")
    with pytest.raises(grpc.RpcError) as failure:
        grpc_stub.Head(pb.HeadRequest(key="fifo"), timeout=20)
    assert error_reason(failure.value) == (grpc.StatusCode.NOT_FOUND, "OBJECT_NOT_FOUND")
    assert grpc_stub.Delete(pb.DeleteRequest(key="fifo"), timeout=20).existed is False
    assert list(grpc_stub.List(pb.ListRequest(), timeout=20).objects) == []


def test_unexpected_driver_error_is_logged_and_detail_free(
    local_gateway: Any, grpc_stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An object file cut short while it is being read: the client gets a
    bare INTERNAL, the log gets the error and its traceback."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from tests.rpc_calls import put as rpc_put

    size = 32 * 1024 * 1024
    rpc_put(grpc_stub, "big", os.urandom(1024) * (size // 1024))
    path = local_gateway.data_dir / "default" / "objects" / "big"
    with caplog.at_level(logging.ERROR, logger="storagegw"):
        responses = grpc_stub.Get(pb.GetRequest(key="big"))
        next(responses)
        os.truncate(path, 1024)
        with pytest.raises(grpc.RpcError) as failure:
            for _ in responses:
                pass
    error = failure.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error; see the gateway's log"
    assert any(
        "unexpected error in Get" in record.getMessage() and record.exc_info
        for record in caplog.records
    )


def test_data_directories_are_private(tmp_path: Path) -> None:
    """Every directory the gateway creates (base path and its parents, bucket
    root, objects and their key directories, temp files, uploads, the URL
    secret's) is 0700: other local users cannot list key names."""
    import grpc

    from storagegw.v1 import storage_pb2 as pb
    from storagegw.v1 import storage_pb2_grpc
    from tests.conftest import run_gateway
    from tests.rpc_calls import put as rpc_put

    fresh = tmp_path / "fresh"
    with (
        run_gateway({"STORAGE_BACKEND": "local"}, fresh / "data") as running,
        grpc.insecure_channel(running.target) as channel,
    ):
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        rpc_put(stub, "a/b/c.txt", b"x")
        stub.StartUpload(pb.StartUploadRequest(spec=pb.PutSpec(key="d/e/f")))
    directories = [fresh] + [path for path in fresh.rglob("*") if path.is_dir()]
    assert len(directories) >= 8
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in directories}
    assert set(modes.values()) == {"0o700"}, modes


def test_relative_base_path_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """STORAGE_BASE_PATH may be relative (the default, ./data, is)."""
    from tests.conftest import run_gateway

    monkeypatch.chdir(tmp_path)
    with run_gateway({"STORAGE_BACKEND": "local"}, Path("rel")):
        pass
    assert stat.S_IMODE((tmp_path / "rel" / "default" / "objects").stat().st_mode) == 0o700

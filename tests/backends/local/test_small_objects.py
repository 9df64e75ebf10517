"""Driver-level tests of the local backend, on a real directory: small objects are
kept in memory, take one thread hop and one file fsync; large reads stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.local import io as local_io
from gateway.backends.local.backend import LocalBackend
from gateway.domain.errors import Reason
from gateway.domain.objects import Conditions, WriteOptions
from tests.backends.local.driver_checks import BIG, expect, object_files, tmp_files
from tests.drivers import get, put, sums

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

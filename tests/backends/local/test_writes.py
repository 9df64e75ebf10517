"""Driver-level tests of the local backend, on a real directory: writes, commits,
aborts, conditions and copies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from gateway.backends.local.backend import LocalBackend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, ObjectMeta, WriteOptions
from tests.backends.local.driver_checks import BIG, expect, object_files, tmp_files
from tests.drivers import get, put, sums


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


async def test_generation_increases(backend: LocalBackend) -> None:
    generations = [(await put(backend, "k", b"%d" % i)).generation for i in range(20)]
    assert generations == sorted(set(generations))


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

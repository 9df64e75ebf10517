"""The backend conformance suite: what every driver must do, written once and
run against each (memory; local disk; S3 on moto and on a real Ceph RGW;
GCS on fake-gcs-server).

These talk to the drivers through the Backend Protocol only. What one driver
does beyond it (quotas, the on-disk format, multipart parts, presigning...)
is tested in that driver's own test file; the whole gRPC surface runs on
every backend too, through the `gateway` fixture.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, ObjectMeta, WriteOptions
from tests import drivers
from tests.drivers import list_all, sums, utf8

MIB = 1024 * 1024
# The compressed and dedup buckets too: a Backend wrapper must conform as a driver does.
DRIVERS = drivers.NAMES + drivers.ZSTD_NAMES + drivers.DEDUP_NAMES
# What the tests of test_gcs_emulator_gaps.py show the gateway asks for.
IGNORES_RESUMABLE = "fake-gcs-server ignores preconditions on resumable uploads"
# S3 parts of 5 MiB (S3's minimum, tests/drivers.py), so that multipart uploads
# happen at test sizes.
PART = 5 * MIB


def _data(size: int) -> bytes:
    block = bytes(range(251)) * 4177  # a prime-length pattern: misplaced bytes show
    return (block * (size // len(block) + 1))[:size]


async def put(
    backend: Backend, key: str, data: bytes, options: WriteOptions | None = None
) -> ObjectMeta:
    return await drivers.put(backend, key, data, options, chunk=256 * 1024 + 7)


get = drivers.get


@pytest.fixture(params=DRIVERS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with drivers.probed_backend(request, request.param, tmp_path) as driver:
        yield driver


async def _reason(call: Any) -> Reason:
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value.reason


async def _missing(backend: Backend, key: str) -> bool:
    return await _reason(backend.head(key)) is Reason.OBJECT_NOT_FOUND


# --- writing and reading ------------------------------------------------------------


async def test_is_a_backend(backend: Backend) -> None:
    # Every driver keeps resumable uploads and has them swept when stale.
    assert backend.capabilities.uploads is not None
    assert backend.capabilities.cleaner is not None
    assert backend.kind


@pytest.mark.parametrize("size", [0, 1000, PART, PART + 1, 2 * PART + 12345], ids=lambda n: f"{n}B")
async def test_round_trip(backend: Backend, size: int) -> None:
    data = _data(size)
    options = WriteOptions(content_type="text/plain", metadata={"team": "storage", "n": "1"})
    meta = await put(backend, "dir/obj.txt", data, options)
    assert (meta.key, meta.size) == ("dir/obj.txt", size)
    assert meta.crc32c == crc32c(data)
    assert meta.sha256 == hashlib.sha256(data).digest()
    assert meta.content_type == "text/plain"
    assert dict(meta.metadata) == {"team": "storage", "n": "1"}
    assert meta.etag
    head = await backend.head("dir/obj.txt")
    assert (head.size, head.etag, head.generation) == (size, meta.etag, meta.generation)
    assert (head.crc32c, head.sha256) == (meta.crc32c, meta.sha256)
    assert (head.content_type, dict(head.metadata)) == ("text/plain", dict(meta.metadata))
    assert await get(backend, "dir/obj.txt", chunk_size=64 * 1024) == data


async def test_ranges(backend: Backend) -> None:
    data = _data(10_000)
    await put(backend, "r", data)
    assert await get(backend, "r", 10, 20) == data[10:30]
    assert await get(backend, "r", 9_990, 100) == data[9_990:]
    assert await get(backend, "r", -5) == data[-5:]
    assert await get(backend, "r", -5, 2) == data[-5:-3]
    assert await get(backend, "r", -20_000) == data  # a suffix longer than the object
    assert await get(backend, "r", 10_000) == b""  # offset == size: empty, not an error
    assert await get(backend, "r", 5, 0) == b""
    reader = await backend.open_read("r", 100, 50, Conditions())
    try:
        assert (reader.start, reader.end, reader.meta.size) == (100, 150, 10_000)
    finally:
        await reader.close()
    assert await _reason(backend.open_read("r", 10_001, None, Conditions())) is (
        Reason.INVALID_RANGE
    )
    await put(backend, "empty", b"")
    assert await get(backend, "empty") == b""
    assert await get(backend, "empty", -5) == b""
    assert await _reason(backend.open_read("empty", 1, None, Conditions())) is (
        Reason.INVALID_RANGE
    )


async def test_chunks_have_the_size_asked_for(backend: Backend) -> None:
    data = _data(23_000)
    await put(backend, "k", data)
    reader = await backend.open_read("k", 0, None, Conditions())
    try:
        sizes = [len(chunk) async for chunk in reader.chunks(5_000)]
    finally:
        await reader.close()
        await reader.close()  # idempotent
    assert sizes == [5_000] * 4 + [3_000]
    reader = await backend.open_read("k", 5, 100, Conditions())
    try:
        chunks = [chunk async for chunk in reader.chunks(30)]
    finally:
        await reader.close()
    assert [len(chunk) for chunk in chunks] == [30, 30, 30, 10]
    assert b"".join(chunks) == data[5:105]


async def test_missing_object(backend: Backend) -> None:
    assert await _missing(backend, "nope")
    assert await _reason(backend.open_read("nope", 0, None, Conditions())) is (
        Reason.OBJECT_NOT_FOUND
    )
    assert await backend.delete("nope") is False


# --- atomicity: nothing visible until commit -------------------------------------------


@pytest.mark.parametrize("size", [1000, 2 * PART + 1], ids=["small", "multipart"])
async def test_nothing_visible_before_commit_nor_after_abort(backend: Backend, size: int) -> None:
    writer = await backend.open_write("k", WriteOptions())
    await writer.write(_data(size))
    assert await _missing(backend, "k")
    assert (await backend.list(ListQuery(page_size=10))).objects == []
    await writer.abort()
    await writer.abort()  # idempotent
    assert await _missing(backend, "k")
    assert (await backend.list(ListQuery(page_size=10))).objects == []


async def test_replacing_keeps_the_old_object_until_commit(backend: Backend) -> None:
    old = await put(backend, "k", b"old")
    writer = await backend.open_write("k", WriteOptions())
    await writer.write(b"new!")
    assert await get(backend, "k") == b"old"
    await writer.abort()
    assert (await backend.head("k")).etag == old.etag
    new = await put(backend, "k", b"new!")
    assert await get(backend, "k") == b"new!"
    assert new.generation > old.generation


async def test_cancelled_write_leaves_nothing(backend: Backend) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def write() -> None:
        writer = await backend.open_write("cancelled", WriteOptions())
        try:
            await writer.write(_data(PART + 1))
            started.set()
            await release.wait()
            await writer.commit(sums(b""))
        except BaseException:
            await writer.abort()
            raise

    task = asyncio.create_task(write())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _missing(backend, "cancelled")


# --- preconditions ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [6, 2 * PART + 1], ids=["single", "multipart"])
@pytest.mark.emulator_gap("gcs", IGNORES_RESUMABLE, case="multipart")
async def test_create_only(backend: Backend, size: int) -> None:
    create_only = WriteOptions(conditions=Conditions(if_none_match="*"))
    first = await put(backend, "once", b"first", create_only)
    assert await _reason(put(backend, "once", _data(size), create_only)) is (
        Reason.PRECONDITION_FAILED
    )
    assert (await backend.head("once")).etag == first.etag
    assert await get(backend, "once") == b"first"


async def test_write_conditions(backend: Backend) -> None:
    meta = await put(backend, "k", b"v1")
    for wrong in (
        Conditions(if_match="not-the-etag"),
        Conditions(if_generation_match=meta.generation + 1),
        Conditions(if_generation_match=0),  # "must not exist"
        Conditions(if_generation_not_match=meta.generation),
    ):
        assert await _reason(put(backend, "k", b"v2", WriteOptions(conditions=wrong))) is (
            Reason.PRECONDITION_FAILED
        ), wrong
    assert await get(backend, "k") == b"v1"
    v2 = await put(backend, "k", b"v2", WriteOptions(conditions=Conditions(if_match=meta.etag)))
    by_generation = Conditions(if_generation_match=v2.generation)
    await put(backend, "k", b"v3", WriteOptions(conditions=by_generation))
    assert await get(backend, "k") == b"v3"
    # A condition on an object that does not exist fails (only create-only passes).
    absent = WriteOptions(conditions=Conditions(if_match=meta.etag))
    assert await _reason(put(backend, "absent", b"x", absent)) is Reason.PRECONDITION_FAILED
    assert await _missing(backend, "absent")


async def test_read_conditions(backend: Backend) -> None:
    meta = await put(backend, "k", b"value")
    assert await _reason(backend.head("k", Conditions(if_match="nope"))) is (
        Reason.PRECONDITION_FAILED
    )
    assert await _reason(backend.open_read("k", 0, None, Conditions(if_none_match=meta.etag))) is (
        Reason.NOT_MODIFIED
    )
    wrong_generation = Conditions(if_generation_match=meta.generation + 1)
    assert await _reason(backend.open_read("k", 0, None, wrong_generation)) is (
        Reason.PRECONDITION_FAILED
    )
    head = await backend.head("k", Conditions(if_match=meta.etag))
    assert head.generation == meta.generation
    reader = await backend.open_read("k", 0, None, Conditions(if_generation_match=meta.generation))
    await reader.close()


async def test_delete(backend: Backend) -> None:
    meta = await put(backend, "k", b"x")
    assert await _reason(backend.delete("k", Conditions(if_match="nope"))) is (
        Reason.PRECONDITION_FAILED
    )
    assert await _reason(backend.delete("missing", Conditions(if_match=meta.etag))) is (
        Reason.PRECONDITION_FAILED
    )
    assert await get(backend, "k") == b"x"
    assert await backend.delete("k", Conditions(if_generation_match=meta.generation)) is True
    assert await _missing(backend, "k")
    assert await backend.delete("k") is False


# --- listing -------------------------------------------------------------------------


def _keys() -> list[str]:
    # Leaves only (no key is another's "directory"), so the local disk can hold
    # them all; byte order differs from a case-folded order.
    segments = ["a", "a.b", "a0", "a-", "b", "é", "B", "日本", "z", "\U0001f600"]
    keys = {
        f"{first}/{second}/{i}"
        for i, (first, second) in enumerate((f, s) for f in segments for s in segments)
    }
    keys |= {f"{segment}.txt" for segment in segments}
    return sorted(keys)


async def test_listing(backend: Backend) -> None:
    keys = _keys()
    await asyncio.gather(*(put(backend, key, b"") for key in keys))
    expected = sorted(keys, key=utf8)
    assert expected != sorted(keys, key=str.lower)  # the order is byte order, not case-folded

    listed, prefixes = await list_all(backend, page_size=17)
    assert (listed, prefixes) == (expected, [])

    listed, prefixes = await list_all(backend, delimiter="/", page_size=3)
    assert listed == [key for key in expected if "/" not in key]
    assert prefixes == sorted({key.split("/")[0] + "/" for key in keys if "/" in key}, key=utf8)

    listed, prefixes = await list_all(backend, prefix="a", delimiter="/", page_size=4)
    assert listed == [k for k in expected if k.startswith("a") and "/" not in k]
    assert prefixes == sorted(
        {k.split("/")[0] + "/" for k in keys if k.startswith("a") and "/" in k}, key=utf8
    )

    listed, _ = await list_all(backend, prefix="日本/", page_size=5)
    assert listed == [k for k in expected if k.startswith("日本/")]
    assert listed

    page = await backend.list(ListQuery(page_size=1000, start_after=expected[50]))
    assert [meta.key for meta in page.objects] == expected[51:]
    assert page.next_page_token == ""

    assert await _reason(backend.list(ListQuery(page_size=10, page_token="not-a-token"))) is (
        Reason.INVALID_PAGE_TOKEN
    )


async def test_listing_entries_describe_the_objects(backend: Backend) -> None:
    meta = await put(backend, "d/one", b"12345")
    [entry] = (await backend.list(ListQuery(page_size=10, prefix="d/"))).objects
    assert (entry.key, entry.size, entry.etag) == ("d/one", 5, meta.etag)


# --- copy ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, PART + 1], ids=["small", "multipart"])
async def test_copy_keeps_or_replaces_metadata(backend: Backend, size: int) -> None:
    data = _data(size)
    options = WriteOptions(content_type="text/x", metadata={"m": "1"})
    source = await put(backend, "src", data, options)
    kept = await backend.copy(
        CopyRequest("src", "dir/kept", options=WriteOptions(content_type="ignored/x"))
    )
    assert (kept.content_type, dict(kept.metadata)) == ("text/x", {"m": "1"})
    assert (kept.size, kept.crc32c, kept.sha256) == (size, source.crc32c, source.sha256)
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
    head = await backend.head("replaced")
    assert (head.content_type, head.crc32c, head.sha256) == ("a/b", source.crc32c, source.sha256)
    assert await get(backend, "replaced") == data


@pytest.mark.emulator_gap("gcs", "fake-gcs-server ignores preconditions on rewrites")
async def test_copy_destination_create_only(backend: Backend) -> None:
    await put(backend, "src", b"payload")
    await put(backend, "dst", b"existing")
    create_only = WriteOptions(conditions=Conditions(if_none_match="*"))
    assert await _reason(backend.copy(CopyRequest("src", "dst", options=create_only))) is (
        Reason.PRECONDITION_FAILED
    )
    assert await get(backend, "dst") == b"existing"


async def test_copy_source_conditions_and_missing_source(backend: Backend) -> None:
    await put(backend, "src", b"payload")
    wrong_source = Conditions(if_match="nope")
    assert await _reason(backend.copy(CopyRequest("src", "x", source_conditions=wrong_source))) is (
        Reason.PRECONDITION_FAILED
    )
    assert await _reason(backend.copy(CopyRequest("missing", "x"))) is Reason.OBJECT_NOT_FOUND
    assert await _missing(backend, "x")

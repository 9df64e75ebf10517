"""How a compressed bucket stores its objects, looked at through the driver
beneath it (a local disk; Ceph RGW): compressible types smaller, as seekable
zstd that standard tools decompress; the rest as they are; ranges served from
the frames holding them alone."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zstandard

from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from gateway.layers.compression.layouts import ENCODING
from gateway.layers.compression.seekable import parse_tail
from tests import drivers
from tests.compression.stored import FRAME, compressed, csv_rows, json_log, noise, stored
from tests.drivers import get, list_all, put

STORES = ["local", "s3-ceph"]


@pytest.fixture(params=STORES)
async def inner(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with drivers.probed_backend(request, request.param, tmp_path) as driver:
        yield driver


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/json", json_log), ("text/csv", csv_rows)],
    ids=["json", "csv"],
)
async def test_compressible_types_are_stored_smaller(
    inner: Backend, content_type: str, body: object
) -> None:
    bucket, _ = compressed(inner)
    data = body(5 * FRAME + 123)  # type: ignore[operator]
    meta = await put(bucket, "logs/a", data, WriteOptions(content_type=content_type))
    assert (meta.size, meta.crc32c, meta.sha256) == (
        len(data),
        crc32c(data),
        hashlib.sha256(data).digest(),
    )
    raw_meta, raw = await stored(inner, "logs/a")
    assert raw_meta.size == len(raw) < len(data) * 0.5
    assert raw_meta.metadata[ENCODING] == "zstd-seekable"
    assert await get(bucket, "logs/a", chunk_size=10_000) == data
    # A fresh bucket object (no layout remembered) reads the tail to tell.
    fresh, _ = compressed(inner)
    head = await fresh.head("logs/a")
    assert (head.size, head.crc32c, head.sha256) == (meta.size, meta.crc32c, meta.sha256)
    assert head.content_type == content_type
    assert ENCODING not in head.metadata


async def test_the_stored_object_is_standard_zstd(inner: Backend, tmp_path: Path) -> None:
    bucket, _ = compressed(inner)
    data = json_log(3 * FRAME + 5)
    await put(bucket, "a.json", data, WriteOptions(content_type="application/json"))
    _, raw = await stored(inner, "a.json")
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
    assert reader.read() == data
    if shutil.which("zstd"):
        path = tmp_path / "a.json.zst"
        path.write_bytes(raw)
        result = subprocess.run(["zstd", "-d", "-c", str(path)], capture_output=True, check=True)
        assert result.stdout == data


async def test_user_metadata_is_kept_and_reserved_entries_are_not_taken(inner: Backend) -> None:
    bucket, _ = compressed(inner)
    data = json_log(FRAME // 2)
    options = WriteOptions(
        content_type="application/json",
        metadata={"team": "logs", "sgwc-encoding": "forged", "sgwc-x": "1"},
    )
    meta = await put(bucket, "m", data, options)
    assert dict(meta.metadata) == {"team": "logs"}
    assert dict((await bucket.head("m")).metadata) == {"team": "logs"}
    # A type not compressed: the forged marker is dropped too, so reads are not confused.
    await put(bucket, "n", data, WriteOptions(content_type="image/png", metadata=options.metadata))
    assert dict((await inner.head("n")).metadata) == {"team": "logs"}
    assert await get(bucket, "n") == data


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
async def test_incompressible_bytes_are_stored_as_they_are(
    inner: Backend, content_type: str
) -> None:
    bucket, _ = compressed(inner)
    for key, size in (("big", 3 * FRAME + 1), ("small", 1000)):
        data = noise(size)
        meta = await put(bucket, key, data, WriteOptions(content_type=content_type))
        raw_meta, raw = await stored(inner, key)
        assert raw == data
        assert ENCODING not in raw_meta.metadata
        assert (meta.size, meta.crc32c) == (size, crc32c(data))
        assert await get(bucket, key, 7, 100) == data[7:107]


@pytest.mark.parametrize("content_type", ["image/png", "application/zip", "video/mp4"])
async def test_compressed_types_are_never_compressed_again(
    inner: Backend, content_type: str
) -> None:
    bucket, _ = compressed(inner, types=("*/*",))  # even when every type is named
    data = json_log(2 * FRAME)  # bytes that would compress well
    await put(bucket, "img", data, WriteOptions(content_type=content_type))
    raw_meta, raw = await stored(inner, "img")
    assert raw == data
    assert ENCODING not in raw_meta.metadata


async def test_ranges_across_frames_equal_the_original_slices(inner: Backend) -> None:
    bucket, _ = compressed(inner)
    data = json_log(7 * FRAME + 777)
    await put(bucket, "r.json", data, WriteOptions(content_type="application/json"))
    rng = random.Random(17)
    edges = [FRAME * n + d for n in range(1, 8) for d in (-1, 0, 1)]
    cases = [(edge, rng.randrange(1, 3 * FRAME)) for edge in edges]
    cases += [(rng.randrange(len(data)), rng.randrange(0, 2 * FRAME)) for _ in range(20)]
    for offset, limit in cases:
        assert await get(bucket, "r.json", offset, limit, 4099) == data[offset : offset + limit]
    assert await get(bucket, "r.json", -FRAME - 3) == data[-FRAME - 3 :]
    assert await get(bucket, "r.json", len(data)) == b""
    assert await get(bucket, "r.json", FRAME * 2, 0) == b""


async def test_a_range_reads_only_the_frames_holding_it(inner: Backend) -> None:
    bucket, counter = compressed(inner)
    data = json_log(16 * FRAME)
    await put(bucket, "big.json", data, WriteOptions(content_type="application/json"))
    raw_meta, raw = await stored(inner, "big.json")
    frames = parse_tail(len(raw), raw).frames
    await bucket.head("big.json")  # its layout read once (and remembered)
    counter.fetched = 0
    offset = 9 * FRAME + 100
    assert await get(bucket, "big.json", offset, 200) == data[offset : offset + 200]
    assert counter.fetched == frames[9].stored_size
    counter.fetched = 0
    offset = 3 * FRAME - 10
    assert await get(bucket, "big.json", offset, 20) == data[offset : offset + 20]
    assert counter.fetched == frames[2].stored_size + frames[3].stored_size
    assert counter.fetched < raw_meta.size / 4


async def test_listing_reports_the_original_sizes(inner: Backend) -> None:
    bucket, _ = compressed(inner)
    bodies = {
        "l/a.json": (json_log(3 * FRAME), "application/json"),
        "l/b.bin": (noise(5000), "text/plain"),
        "l/c.png": (json_log(4000), "image/png"),
        "l/d.csv": (csv_rows(200), "text/csv"),
    }
    for key, (data, content_type) in bodies.items():
        await put(bucket, key, data, WriteOptions(content_type=content_type))
    keys, _ = await list_all(bucket, prefix="l/")
    assert keys == sorted(bodies)
    page = await bucket.list(ListQuery(page_size=10, prefix="l/"))
    assert {m.key: m.size for m in page.objects} == {k: len(d) for k, (d, _) in bodies.items()}
    assert all(ENCODING not in m.metadata for m in page.objects)


async def test_a_copy_keeps_the_stored_bytes_and_reads_the_same(inner: Backend) -> None:
    bucket, _ = compressed(inner)
    data = json_log(2 * FRAME + 9)
    await put(bucket, "src", data, WriteOptions(content_type="application/json"))
    request = CopyRequest(
        "src",
        "dst",
        replace_metadata=True,
        options=WriteOptions(content_type="text/plain", metadata={"k": "v"}),
    )
    meta = await bucket.copy(request)
    assert (meta.size, meta.crc32c, dict(meta.metadata)) == (len(data), crc32c(data), {"k": "v"})
    assert (await stored(inner, "dst"))[1] == (await stored(inner, "src"))[1]
    assert await get(bucket, "dst", FRAME - 3, 10) == data[FRAME - 3 : FRAME + 7]


async def test_an_object_replaced_by_another_process_reads_as_it_is_now(inner: Backend) -> None:
    # Two gateways on one store: this one remembers the layout of what it wrote.
    bucket, counter = compressed(inner)
    other, _ = compressed(inner)
    first = json_log(3 * FRAME)
    meta = await put(bucket, "k.json", first, WriteOptions(content_type="application/json"))
    counter.fetched = 0
    assert await get(bucket, "k.json", FRAME, 10) == first[FRAME : FRAME + 10]
    assert (
        counter.fetched == parse_tail(*_sized(await stored(inner, "k.json"))).frames[1].stored_size
    )
    with pytest.raises(GatewayError) as caught:
        await get_with(bucket, "k.json", Conditions(if_none_match=meta.etag))
    assert caught.value.reason is Reason.NOT_MODIFIED
    second = json_log(2 * FRAME, seed=99)
    await put(other, "k.json", second, WriteOptions(content_type="application/json"))
    assert await get(bucket, "k.json", FRAME, 10) == second[FRAME : FRAME + 10]
    longer = json_log(5 * FRAME, seed=5)  # past what this one saw last
    await put(other, "k.json", longer, WriteOptions(content_type="application/json"))
    assert await get(bucket, "k.json", 4 * FRAME + 1, 10) == longer[4 * FRAME + 1 :][:10]
    third = noise(FRAME)
    await put(other, "k.json", third, WriteOptions(content_type="image/png"))
    assert await get(bucket, "k.json", 5, 10) == third[5:15]
    assert (await bucket.head("k.json")).size == len(third)
    await other.delete("k.json")
    with pytest.raises(GatewayError) as caught:
        await get(bucket, "k.json", 0, 10)
    assert caught.value.reason is Reason.OBJECT_NOT_FOUND


def _sized(found: tuple[object, bytes]) -> tuple[int, bytes]:
    return len(found[1]), found[1]


async def get_with(bucket: Backend, key: str, conditions: Conditions) -> bytes:
    reader = await bucket.open_read(key, 0, None, conditions)
    try:
        return b"".join([chunk async for chunk in reader.chunks(65536)])
    finally:
        await reader.close()


async def test_a_damaged_stored_object_is_an_error_not_garbage(inner: Backend) -> None:
    bucket, _ = compressed(inner)
    data = json_log(3 * FRAME)
    await put(bucket, "d.json", data, WriteOptions(content_type="application/json"))
    _, raw = await stored(inner, "d.json")
    marked = WriteOptions(content_type="application/json", metadata={ENCODING: "zstd-seekable"})
    for damaged in (raw[:-1], raw[:100] + bytes(50) + raw[150:], b"not zstd at all"):
        await put(inner, "d.json", damaged, marked)
        fresh, _ = compressed(inner)
        with pytest.raises(GatewayError) as caught:
            await get(fresh, "d.json")
        assert caught.value.reason is Reason.INTERNAL
        assert "damaged" in caught.value.message

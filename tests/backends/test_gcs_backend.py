"""Driver-level tests of the GCS backend against a real fake-gcs-server over HTTP.

The emulator checks no credentials and no signatures, and ignores some
preconditions (tests/backends/test_gcs_emulator_gaps.py); these tests stay on what it
gets right, and check signed URLs by what they ask for and by fetching them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.backends.gcs.backend import GcsBackend
from gateway.backends.gcs.settings import GcsSettings
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests import drivers
from tests.drivers import list_all, sums
from tests.fake_gcs_server import FakeGcsServer, emulator_client
from tests.servers import free_port

KIB = 1024
CHUNK = 256 * KIB  # the smallest chunk GCS allows: resumable uploads at small sizes

put = functools.partial(drivers.put, chunk=64 * KIB)
get = drivers.get


def _data(size: int) -> bytes:
    block = bytes(range(251)) * 4177  # a prime-length pattern: misplaced bytes show
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def bucket(fake_gcs: FakeGcsServer) -> str:
    fake_gcs.reset()
    return fake_gcs.new_bucket()


def _settings(server: FakeGcsServer, bucket: str, **overrides: Any) -> GcsSettings:
    values: dict[str, Any] = {
        "bucket": bucket,
        "prefix": "gw/",
        "emulator_host": server.endpoint,
        "chunk_size": CHUNK,
        "threads": 4,
        **overrides,
    }
    return GcsSettings(**values)


@pytest.fixture
async def backend(fake_gcs: FakeGcsServer, bucket: str) -> AsyncIterator[GcsBackend]:
    driver = GcsBackend(_settings(fake_gcs, bucket))
    yield driver
    await driver.close()


def _stored(server: FakeGcsServer, bucket: str) -> list[str]:
    return server.object_names(bucket)


async def test_is_a_backend(backend: GcsBackend) -> None:
    assert backend.capabilities.presigner is not None
    assert backend.capabilities.uploads is not None
    assert backend.kind == "gcs"
    await backend.probe()


@pytest.mark.parametrize(
    "size", [0, 1000, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 12345], ids=lambda n: f"{n}B"
)
async def test_round_trip(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str, size: int
) -> None:
    data = _data(size)
    options = WriteOptions(content_type="text/plain", metadata={"Colour": "blue", "n": "1"})
    meta = await put(backend, "dir/obj", data, options)
    expected = sums(data)
    assert (meta.key, meta.size) == ("dir/obj", size)
    assert (meta.crc32c, meta.sha256) == (expected.crc32c, expected.sha256)
    assert meta.etag == str(meta.generation)
    assert _stored(fake_gcs, bucket) == ["gw/dir/obj"]
    head = await backend.head("dir/obj")
    assert head == meta
    assert head.content_type == "text/plain"
    assert dict(head.metadata) == {"Colour": "blue", "n": "1"}  # GCS keeps the case
    assert await get(backend, "dir/obj", chunk_size=64 * KIB) == data


async def test_checksums_stored_in_metadata(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    for key, data in (("small", b"hello"), ("resumable", _data(CHUNK * 2 + 5))):
        await put(backend, key, data, WriteOptions(metadata={"a": "1"}))
        stored = emulator_client(fake_gcs).bucket(bucket).get_blob(f"gw/{key}")
        assert stored.metadata == {
            "a": "1",
            "sgw-crc32c": f"{sums(data).crc32c:08x}",
            "sgw-sha256": sums(data).sha256.hex(),
        }


async def test_nothing_visible_until_commit(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    writer = await backend.open_write("big", WriteOptions())
    data = _data(5 * CHUNK)
    await writer.write(data[: 3 * CHUNK])
    assert writer.session_url is not None  # type: ignore[attr-defined]
    assert _stored(fake_gcs, bucket) == []
    await writer.write(data[3 * CHUNK :])
    meta = await writer.commit(sums(data))
    assert meta.size == len(data)
    assert await get(backend, "big", chunk_size=100_000) == data


async def test_abort_leaves_nothing(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    writer = await backend.open_write("gone", WriteOptions())
    await writer.write(_data(3 * CHUNK))
    await writer.abort()
    await writer.abort()  # idempotent
    assert _stored(fake_gcs, bucket) == []
    with pytest.raises(GatewayError):
        await writer.write(b"x")


async def test_cancelled_writer_leaves_nothing(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    writer = await backend.open_write("cancelled", WriteOptions())
    started = asyncio.Event()

    async def stream() -> None:
        while True:
            await writer.write(_data(CHUNK))
            if writer.session_url is not None:  # type: ignore[attr-defined]
                started.set()

    task = asyncio.create_task(stream())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _stored(fake_gcs, bucket) == []


async def test_wrong_checksum_is_refused_and_removed(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    for data in (b"small", _data(2 * CHUNK + 1)):
        writer = await backend.open_write("k", WriteOptions())
        await writer.write(data)
        wrong = sums(data + b"!")
        with pytest.raises(GatewayError) as caught:
            await writer.commit(type(wrong)(wrong.crc32c, wrong.sha256, len(data)))
        assert caught.value.reason is Reason.CHECKSUM_MISMATCH
        assert _stored(fake_gcs, bucket) == []


async def test_create_only_and_generation_conditions(backend: GcsBackend) -> None:
    # Single-request uploads: the emulator evaluates these (resumable ones
    # are covered in test_gcs_emulator_gaps.py).
    first = await put(backend, "k", b"first")
    for conditions in (
        Conditions(if_none_match="*"),
        Conditions(if_generation_match=0),
        Conditions(if_match="12345"),
        Conditions(if_match="not-a-generation"),
        Conditions(if_generation_match=first.generation + 1),
        Conditions(if_generation_not_match=first.generation),
        Conditions(if_none_match=first.etag),
    ):
        with pytest.raises(GatewayError) as caught:
            await put(backend, "k", b"second", WriteOptions(conditions=conditions))
        assert caught.value.reason is Reason.PRECONDITION_FAILED, conditions
    assert await get(backend, "k") == b"first"
    second = await put(backend, "k", b"2", WriteOptions(conditions=Conditions(if_match=first.etag)))
    third = await put(
        backend,
        "k",
        b"3",
        WriteOptions(conditions=Conditions(if_generation_match=second.generation)),
    )
    assert third.generation > second.generation > first.generation
    with pytest.raises(GatewayError) as caught:
        await put(
            backend, "missing", b"x", WriteOptions(conditions=Conditions(if_match=first.etag))
        )
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    new = await put(backend, "new", b"x", WriteOptions(conditions=Conditions(if_none_match="*")))
    assert new.size == 1


async def test_ranges(backend: GcsBackend) -> None:
    data = _data(1000)
    await put(backend, "k", data)
    assert await get(backend, "k", 10, 20) == data[10:30]
    assert await get(backend, "k", 990) == data[990:]
    assert await get(backend, "k", 990, 100) == data[990:]
    assert await get(backend, "k", -5) == data[-5:]
    assert await get(backend, "k", -5, 2) == data[-5:-3]
    assert await get(backend, "k", -5000) == data
    assert await get(backend, "k", 1000) == b""
    assert await get(backend, "k", 10, 0) == b""
    with pytest.raises(GatewayError) as caught:
        await backend.open_read("k", 1001, None, Conditions())
    assert caught.value.reason is Reason.INVALID_RANGE
    await put(backend, "empty", b"")
    assert await get(backend, "empty") == b""
    assert await get(backend, "empty", -5) == b""


async def test_reads_come_in_bounded_chunks_across_windows(backend: GcsBackend) -> None:
    data = _data(3 * CHUNK + 7)
    await put(backend, "k", data)
    reader = await backend.open_read("k", 5, None, Conditions())
    got = [c async for c in reader.chunks(100_000)]
    await reader.close()
    assert max(len(c) for c in got) <= CHUNK  # windows are the chunk size
    assert b"".join(got) == data[5:]


async def test_a_read_never_mixes_generations(backend: GcsBackend) -> None:
    await put(backend, "k", _data(3 * CHUNK))
    reader = await backend.open_read("k", 0, None, Conditions())
    chunks = reader.chunks(CHUNK)
    first = await anext(chunks)
    await put(backend, "k", b"replaced")  # the generation being read is gone
    with pytest.raises(GatewayError) as caught:
        async for _ in chunks:
            pass
    assert caught.value.reason is Reason.OBJECT_NOT_FOUND
    assert "while being read" in caught.value.message
    assert len(first) == CHUNK
    await reader.close()


async def test_read_conditions_and_missing(backend: GcsBackend) -> None:
    meta = await put(backend, "k", b"abc")
    assert await backend.head("k", Conditions(if_match=meta.etag)) == meta
    cases = [
        (Conditions(if_match="nope"), Reason.PRECONDITION_FAILED),
        (Conditions(if_none_match=meta.etag), Reason.NOT_MODIFIED),
        (Conditions(if_generation_match=meta.generation + 1), Reason.PRECONDITION_FAILED),
    ]
    for conditions, reason in cases:
        with pytest.raises(GatewayError) as caught:
            await backend.open_read("k", 0, None, conditions)
        assert caught.value.reason is reason
    for call in (backend.head("nope"), backend.open_read("nope", 0, None, Conditions())):
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.reason is Reason.OBJECT_NOT_FOUND


async def test_list(backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str) -> None:
    emulator_client(fake_gcs).bucket(bucket).blob("outside").upload_from_string(b"x")
    keys = [f"a/{i:02d}" for i in range(25)] + [f"b/{i}/x" for i in range(5)] + ["c", "é", "z/"]
    for key in keys:
        await put(backend, key, key.encode())
    everything = sorted(keys, key=str.encode)
    for page_size in (1, 7, 1000):
        assert await list_all(backend, page_size=page_size) == (everything, [])
    assert await list_all(backend, prefix="a/", page_size=4) == (
        [k for k in keys if k.startswith("a/")],
        [],
    )
    # The emulator repeats every prefix on every page: each comes once here.
    for page_size in (1, 2, 3, 1000):
        assert await list_all(backend, delimiter="/", page_size=page_size) == (
            ["c", "é"],
            ["a/", "b/", "z/"],
        )
    assert await list_all(backend, prefix="b/", delimiter="/", page_size=2) == (
        [],
        [f"b/{i}/" for i in range(5)],
    )
    page = await backend.list(ListQuery(page_size=10, prefix="a/", start_after="a/22"))
    assert [m.key for m in page.objects] == ["a/23", "a/24"]
    assert page.next_page_token == ""
    # start_after inside a group: the group counts only if it holds a later key.
    assert (
        await backend.list(ListQuery(page_size=10, delimiter="/", start_after="a/05"))
    ).common_prefixes == ["a/", "b/", "z/"]
    assert (
        await backend.list(ListQuery(page_size=10, delimiter="/", start_after="a/24"))
    ).common_prefixes == ["b/", "z/"]
    first = (await backend.list(ListQuery(page_size=1))).objects[0]
    assert first == await backend.head("a/00")  # listings carry everything HEAD does
    with pytest.raises(GatewayError) as caught:
        await backend.list(ListQuery(page_size=10, page_token="not-a-token"))
    assert caught.value.reason is Reason.INVALID_PAGE_TOKEN


@pytest.mark.parametrize("replace", [False, True])
async def test_copy(backend: GcsBackend, replace: bool) -> None:
    data = _data(3000)
    source = await put(
        backend, "src", data, WriteOptions(content_type="text/plain", metadata={"a": "1"})
    )
    options = WriteOptions(content_type="image/png", metadata={"b": "2"})
    meta = await backend.copy(CopyRequest("src", "dst", options=options, replace_metadata=replace))
    assert await get(backend, "dst") == data
    head = await backend.head("dst")
    assert meta == head
    assert (head.crc32c, head.sha256) == (source.crc32c, source.sha256)
    if replace:
        assert (head.content_type, dict(head.metadata)) == ("image/png", {"b": "2"})
    else:
        assert (head.content_type, dict(head.metadata)) == ("text/plain", {"a": "1"})
    with pytest.raises(GatewayError) as caught:
        await backend.copy(CopyRequest("src", "x", source_conditions=Conditions(if_match="nope")))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    with pytest.raises(GatewayError) as caught:
        await backend.copy(CopyRequest("missing", "x"))
    assert caught.value.reason is Reason.OBJECT_NOT_FOUND


async def test_delete(backend: GcsBackend) -> None:
    meta = await put(backend, "k", b"abc")
    with pytest.raises(GatewayError) as caught:
        await backend.delete("k", Conditions(if_match="nope"))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert await backend.delete("k", Conditions(if_match=meta.etag)) is True
    assert await backend.delete("k") is False
    with pytest.raises(GatewayError) as caught:
        await backend.delete("k", Conditions(if_match=meta.etag))
    assert caught.value.reason is Reason.PRECONDITION_FAILED


async def test_missing_bucket(fake_gcs: FakeGcsServer) -> None:
    driver = GcsBackend(_settings(fake_gcs, "no-such-bucket"))
    try:
        await drivers.assert_bucket_missing(driver, "no-such-bucket")
    finally:
        await driver.close()


async def test_unreachable_endpoint_is_unavailable(bucket: str, gcs_key_file: Path) -> None:
    settings = GcsSettings(
        bucket=bucket,
        emulator_host=f"127.0.0.1:{free_port()}",
        credentials_path=str(gcs_key_file),
        retry_deadline=1.0,
    )
    driver = GcsBackend(settings)
    try:
        for call in (driver.probe(), driver.head("k"), put(driver, "k", b"x")):
            with pytest.raises(GatewayError) as caught:
                await call
            assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
            assert "PRIVATE KEY" not in caught.value.message
    finally:
        await driver.close()


async def test_a_blocked_call_does_not_stall_the_loop(backend: GcsBackend) -> None:
    """Library calls run in the pool: while one is stuck, the loop goes on."""
    await put(backend, "k", b"abc")
    ctx = await backend._context()
    release = threading.Event()
    stuck = asyncio.ensure_future(ctx.run(release.wait, 30))
    assert await backend.head("k")  # served while a pool thread is blocked
    assert not stuck.done()
    release.set()
    assert await stuck is True


async def test_signed_urls(fake_gcs: FakeGcsServer, bucket: str, gcs_key_file: Path) -> None:
    driver = GcsBackend(_settings(fake_gcs, bucket, credentials_path=str(gcs_key_file)))
    try:
        put = await drivers.sign(driver, "dir/up.txt", "PUT", content_type="text/plain")
        parts = urlsplit(put.url)
        query = parse_qs(parts.query)
        assert f"{parts.scheme}://{parts.netloc}" == fake_gcs.endpoint
        assert parts.path == f"/{bucket}/gw/dir/up.txt"
        assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
        assert "content-type" in query["X-Goog-SignedHeaders"][0].split(";")
        assert put.headers == {"Content-Type": "text/plain"}
        async with httpx.AsyncClient() as http:
            response = await http.put(put.url, content=b"uploaded", headers=put.headers)
            assert response.status_code == 200, response.text
            meta = await driver.head("dir/up.txt")
            assert (meta.size, meta.content_type) == (8, "text/plain")
            get = await drivers.sign(
                driver, "dir/up.txt", "GET", download=True, filename="résumé.txt"
            )
            assert get.headers == {}
            disposition = parse_qs(urlsplit(get.url).query)["response-content-disposition"][0]
            assert disposition.startswith('attachment; filename="r_sum_.txt"; filename*=UTF-8')
            response = await http.get(get.url)
            assert response.status_code == 200
            assert response.content == b"uploaded"
        with pytest.raises(GatewayError) as caught:
            await drivers.sign(driver, "k", "PUT", max_size=10)
        assert caught.value.reason is Reason.UNSUPPORTED_OPTION
        with pytest.raises(GatewayError) as caught:
            await drivers.sign(driver, "k", "GET", 8 * 86400)
        assert caught.value.reason is Reason.INVALID_EXPIRY
    finally:
        await driver.close()


async def test_signed_post_policy(fake_gcs: FakeGcsServer, bucket: str, gcs_key_file: Path) -> None:
    driver = GcsBackend(_settings(fake_gcs, bucket, credentials_path=str(gcs_key_file)))
    try:
        post = await drivers.sign(
            driver, "dir/form.txt", "POST", content_type="text/plain", min_size=2, max_size=10
        )
        assert post.url == f"{fake_gcs.endpoint}/{bucket}/"
        assert post.headers == {}
        fields = post.form_fields
        assert fields["key"] == "gw/dir/form.txt"
        assert fields["Content-Type"] == "text/plain"
        assert fields["x-goog-algorithm"] == "GOOG4-RSA-SHA256"
        # The policy GCS checks (the emulator does not): exact name, size range, type.
        conditions = json.loads(base64.b64decode(fields["policy"]))["conditions"]
        assert ["content-length-range", 2, 10] in conditions
        assert {"Content-Type": "text/plain"} in conditions
        assert {"key": "gw/dir/form.txt"} in conditions
        async with httpx.AsyncClient() as http:
            # The library's URL is GCS's "/<bucket>/"; fake-gcs-server routes
            # form uploads at "/<bucket>" only (test_gcs_emulator_gaps.py).
            response = await http.post(
                post.url.rstrip("/"), data=fields, files={"file": ("form.txt", b"by form")}
            )
        assert response.status_code in (200, 201, 204), response.text
        meta = await driver.head("dir/form.txt")
        assert meta.size == 7
    finally:
        await driver.close()


async def test_signing_needs_credentials_that_can_sign(backend: GcsBackend) -> None:
    with pytest.raises(GatewayError) as caught:
        await drivers.sign(backend, "k", "GET", 60)
    assert caught.value.reason is Reason.UNSUPPORTED_OPTION
    assert "STORAGE_GCS_CREDENTIALS_PATH" in caught.value.message


async def test_close(backend: GcsBackend) -> None:
    await put(backend, "k", b"abc")
    await backend.close()
    with pytest.raises(GatewayError) as caught:
        await backend.head("k")
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE

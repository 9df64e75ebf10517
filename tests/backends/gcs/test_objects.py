"""Driver-level tests of the GCS backend's reads (ranges, bounded chunks, one
generation per read, conditions), listing, copies and deletes.

Against a real fake-gcs-server over HTTP. The emulator checks no credentials and no
signatures, and ignores some preconditions (tests/backends/test_gcs_emulator_gaps.py);
these tests stay on what it gets right."""

from __future__ import annotations

import pytest

from gateway.backends.gcs.backend import GcsBackend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests.backends.gcs.emulator_bucket import CHUNK, get, put
from tests.drivers import list_all, patterned_bytes
from tests.fake_gcs_server import FakeGcsServer, emulator_client


async def test_ranges(backend: GcsBackend) -> None:
    data = patterned_bytes(1000)
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
    data = patterned_bytes(3 * CHUNK + 7)
    await put(backend, "k", data)
    reader = await backend.open_read("k", 5, None, Conditions())
    got = [c async for c in reader.chunks(100_000)]
    await reader.close()
    assert max(len(c) for c in got) <= CHUNK  # windows are the chunk size
    assert b"".join(got) == data[5:]


async def test_a_read_never_mixes_generations(backend: GcsBackend) -> None:
    await put(backend, "k", patterned_bytes(3 * CHUNK))
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
    data = patterned_bytes(3000)
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

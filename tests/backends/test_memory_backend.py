"""Driver-level tests of what is particular to the memory backend (quota,
pinned readers, generations); the shared behaviour is in
test_backend_conformance.py."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time

import pytest

from gateway.backends.memory.backend import MemoryBackend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests import drivers
from tests.drivers import sums

# Odd, tiny chunks: exercise the joins and slices at every boundary.
put = functools.partial(drivers.put, chunk=7)
get = functools.partial(drivers.get, chunk_size=5)


async def test_is_a_backend() -> None:
    backend = MemoryBackend()
    assert backend.capabilities.presigner is None
    assert backend.capabilities.upload_counter is not None
    assert backend.kind == "memory"
    await backend.probe()
    await backend.close()


async def test_round_trip_and_metadata() -> None:
    backend = MemoryBackend()
    data = bytes(range(256)) * 3
    options = WriteOptions(content_type="text/plain", metadata={"a": "1"})
    meta = await put(backend, "dir/obj", data, options)
    assert meta.key == "dir/obj"
    assert meta.size == len(data)
    assert meta.etag == hashlib.sha256(data).hexdigest()[:32]
    assert meta.crc32c == crc32c(data)
    assert meta.sha256 == hashlib.sha256(data).digest()
    assert meta.content_type == "text/plain"
    assert dict(meta.metadata) == {"a": "1"}
    assert meta.create_time_ns == meta.update_time_ns > 0
    assert await backend.head("dir/obj") == meta
    assert await get(backend, "dir/obj") == data
    assert await get(backend, "dir/obj", 10, 20) == data[10:30]
    assert await get(backend, "dir/obj", -5) == data[-5:]
    assert await get(backend, "dir/obj", len(data)) == b""


async def test_quota_exceeded_mid_write_raises_and_frees() -> None:
    backend = MemoryBackend(quota_bytes=100)
    writer = await backend.open_write("big", WriteOptions())
    await writer.write(b"x" * 60)
    with pytest.raises(GatewayError) as caught:
        await writer.write(b"x" * 50)
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    assert caught.value.metadata["quota"] == "100"
    await writer.abort()
    assert backend.used_bytes == 0
    # All of the quota is available again.
    meta = await put(backend, "full", b"y" * 100)
    assert meta.size == 100
    assert backend.used_bytes == 100


async def test_quota_counts_writers_in_flight() -> None:
    backend = MemoryBackend(quota_bytes=100)
    first = await backend.open_write("a", WriteOptions())
    second = await backend.open_write("b", WriteOptions())
    await first.write(b"x" * 70)
    with pytest.raises(GatewayError) as caught:
        await second.write(b"x" * 31)
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    await first.abort()
    await second.write(b"x" * 31)
    await second.commit(sums(b"x" * 31))
    assert backend.used_bytes == 31


async def test_quota_size_hint_refused_up_front() -> None:
    backend = MemoryBackend(quota_bytes=100)
    with pytest.raises(GatewayError) as caught:
        await backend.open_write("k", WriteOptions(size_hint=101))
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    assert backend.used_bytes == 0
    writer = await backend.open_write("k", WriteOptions(size_hint=100))
    await writer.abort()


async def test_replace_within_quota_succeeds() -> None:
    backend = MemoryBackend(quota_bytes=100)
    await put(backend, "k", b"a" * 60)
    # 60 + 60 > 100, but the old 60 bytes are freed when the replace commits.
    meta = await put(backend, "k", b"b" * 60)
    assert meta.size == 60
    assert await get(backend, "k") == b"b" * 60
    assert backend.used_bytes == 60
    # The credit is for replacing k only: another key cannot use it.
    with pytest.raises(GatewayError) as caught:
        await put(backend, "other", b"c" * 60)
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    assert backend.used_bytes == 60
    await put(backend, "other", b"c" * 40)
    assert backend.used_bytes == 100


async def test_two_writers_replacing_one_key_share_one_credit() -> None:
    backend = MemoryBackend(quota_bytes=100)
    await put(backend, "k", b"a" * 60)
    first = await backend.open_write("k", WriteOptions())
    second = await backend.open_write("k", WriteOptions())
    await first.write(b"b" * 60)
    # k's 60 bytes are credited once: 60 stored + 60 + 41 held - 60 > 100.
    with pytest.raises(GatewayError) as caught:
        await second.write(b"c" * 41)
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    await second.write(b"c" * 40)
    await first.commit(sums(b"b" * 60))
    await second.commit(sums(b"c" * 40))
    assert await get(backend, "k") == b"c" * 40
    assert backend.used_bytes == 40


async def test_delete_frees_quota() -> None:
    backend = MemoryBackend(quota_bytes=10)
    await put(backend, "k", b"x" * 10)
    assert await backend.delete("k") is True
    assert await backend.delete("k") is False
    assert backend.used_bytes == 0
    await put(backend, "j", b"x" * 10)


async def test_failed_commit_releases_quota_and_stores_nothing() -> None:
    backend = MemoryBackend(quota_bytes=100)
    await put(backend, "k", b"old")
    writer = await backend.open_write("k", WriteOptions(conditions=Conditions(if_none_match="*")))
    await writer.write(b"n" * 50)
    with pytest.raises(GatewayError) as caught:
        await writer.commit(sums(b"n" * 50))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    await writer.abort()  # safe after a failed commit
    assert await get(backend, "k") == b"old"
    assert backend.used_bytes == 3


async def test_reader_is_pinned_to_the_bytes_at_open() -> None:
    backend = MemoryBackend()
    await put(backend, "k", b"first version")
    reader = await backend.open_read("k", 0, None, Conditions())
    await put(backend, "k", b"second version, longer")
    assert await backend.delete("k")
    data = b"".join([c async for c in reader.chunks(4)])
    await reader.close()
    assert data == b"first version"
    assert reader.meta.size == len(b"first version")


async def test_generation_strictly_increases_even_when_the_clock_stalls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = MemoryBackend()
    first = await put(backend, "k", b"1")
    monkeypatch.setattr(time, "time_ns", lambda: first.generation - 1000)
    generations = [first.generation]
    for i in range(5):
        generations.append((await put(backend, "k", str(i).encode())).generation)
    assert generations == sorted(set(generations))
    assert (await backend.head("k")).generation == generations[-1]


async def test_concurrent_writers_last_commit_wins() -> None:
    backend = MemoryBackend()
    one = await backend.open_write("k", WriteOptions())
    two = await backend.open_write("k", WriteOptions())
    for _ in range(10):
        await one.write(b"1" * 10)
        await two.write(b"2" * 10)
    metas = await asyncio.gather(one.commit(sums(b"1" * 100)), two.commit(sums(b"2" * 100)))
    last = max(metas, key=lambda meta: meta.generation)
    assert await backend.head("k") == last
    assert await get(backend, "k") == (b"1" if last is metas[0] else b"2") * 100


@pytest.mark.parametrize("option", ["storage_class", "server_side_encryption", "kms_key_id"])
async def test_unsupported_options(option: str) -> None:
    backend = MemoryBackend()
    options = WriteOptions(**{option: "x"})  # type: ignore[arg-type]
    with pytest.raises(GatewayError) as caught:
        await backend.open_write("k", options)
    assert caught.value.reason is Reason.UNSUPPORTED_OPTION
    assert caught.value.metadata["option"] == option


async def test_copy_counts_against_quota() -> None:
    backend = MemoryBackend(quota_bytes=100)
    await put(backend, "src", b"x" * 60)
    with pytest.raises(GatewayError) as caught:
        await backend.copy(CopyRequest("src", "dst"))
    assert caught.value.reason is Reason.QUOTA_EXCEEDED
    # Copying over itself replaces 60 bytes with 60 bytes.
    await backend.copy(CopyRequest("src", "src"))
    assert backend.used_bytes == 60


async def test_listing_survives_changes_between_pages() -> None:
    backend = MemoryBackend()
    for key in ("a", "b", "c", "d"):
        await put(backend, key, b"")
    page = await backend.list(ListQuery(page_size=2))
    assert [meta.key for meta in page.objects] == ["a", "b"]
    await backend.delete("c")
    await put(backend, "bb", b"")
    await put(backend, "aa", b"")  # before the token: not listed again
    rest = await backend.list(ListQuery(page_size=10, page_token=page.next_page_token))
    assert [meta.key for meta in rest.objects] == ["bb", "d"]

"""The dedup layer on each store (tests/drivers.py DEDUP_NAMES): one blob per
content, references that outlive each other, the garbage collector and its
grace period, and the interleavings of writers and the collector, driven
step by step (no sleeps: the sweep takes `now`)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.backends.base import Backend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from gateway.layers.dedup import DedupBackend
from gateway.layers.dedup.blobs import secure
from gateway.layers.dedup.names import Pointer, blob_digest, blob_key, marker_key, temp_key
from tests import drivers
from tests.drivers import get, list_all, put

HOUR = 3600.0
LATER = time.time() + 2 * HOUR  # past the default grace of an hour


@pytest.fixture(params=drivers.DEDUP_NAMES)
async def layer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DedupBackend]:
    async with drivers.probed_backend(request, request.param, tmp_path) as backend:
        assert isinstance(backend, DedupBackend)  # the table's dedup rows build the layer
        yield backend


async def _stored(inner: Backend) -> list[str]:
    """The keys of the store's own objects under the layer's prefix."""
    keys, _ = await list_all(inner, prefix=".cas/", page_size=1000)
    return keys


async def _blobs(inner: Backend) -> list[bytes]:
    return [d for d in map(blob_digest, await _stored(inner)) if d is not None]


async def _reason(call: object) -> Reason:
    with pytest.raises(GatewayError) as caught:
        await call  # type: ignore[misc]
    return caught.value.reason


async def test_identical_puts_store_one_blob(layer: DedupBackend) -> None:
    data = b"the same bytes " * 1000
    for i in range(5):
        await put(layer, f"copies/{i}", data, WriteOptions(metadata={"n": str(i)}))
    await put(layer, "other", b"different")
    assert sorted(await _blobs(layer.inner)) == sorted(
        [hashlib.sha256(data).digest(), hashlib.sha256(b"different").digest()]
    )
    for i in range(5):
        assert await get(layer, f"copies/{i}") == data
        assert dict((await layer.head(f"copies/{i}")).metadata) == {"n": str(i)}
    keys, _ = await list_all(layer)
    assert keys == [*(f"copies/{i}" for i in range(5)), "other"]
    stats = await layer.dedup_stats()
    assert (stats.objects, stats.blobs) == (6, 2)
    assert stats.logical_bytes == 5 * len(data) + 9
    assert stats.stored_bytes == len(data) + 9
    assert stats.saved_bytes == 4 * len(data)


async def test_deleting_one_reference_keeps_the_other(layer: DedupBackend) -> None:
    await put(layer, "a", b"shared")
    await put(layer, "b", b"shared")
    assert await layer.delete("a") is True
    assert (await layer.collect_garbage(now=LATER)).blobs_deleted == 0
    assert await get(layer, "b") == b"shared"
    assert await layer.delete("b") is True
    swept = await layer.collect_garbage(now=LATER)
    assert swept.blobs_deleted == 1
    assert await _stored(layer.inner) == []


async def test_an_unreferenced_blob_stays_until_past_the_grace_period(layer: DedupBackend) -> None:
    await put(layer, "k", b"bytes")
    await layer.delete("k")
    assert (await layer.collect_garbage()).blobs_deleted == 0  # now: within the grace
    assert len(await _blobs(layer.inner)) == 1
    assert (await layer.collect_garbage(now=LATER)).blobs_deleted == 1
    assert await _blobs(layer.inner) == []


async def test_concurrent_puts_of_new_content_make_one_blob(layer: DedupBackend) -> None:
    data = bytes(range(256)) * 300
    await asyncio.gather(*(put(layer, f"k{i}", data) for i in range(12)))
    assert await _blobs(layer.inner) == [hashlib.sha256(data).digest()]
    for i in range(12):
        assert await get(layer, f"k{i}") == data
    assert not [k for k in await _stored(layer.inner) if k.startswith(".cas/tmp/")]


async def test_a_put_racing_the_collector_keeps_its_object(layer: DedupBackend) -> None:
    """The collector has listed the references (none) and is about to
    condemn the blob when a Put of the same content touches it: the
    condemnation fails, the blob stays."""
    data = b"raced content"
    digest = hashlib.sha256(data).digest()
    await put(layer, "old", data)
    await layer.delete("old")
    inner = layer.inner
    marker = await inner.head(marker_key(digest))
    # The Put's steps up to its reference (blobs.secure, with its own bytes).
    temp = temp_key()
    await put(inner, temp, data)
    assert await secure(inner, digest, temp) is not None
    # The collector's condemnation, conditioned on the marker it read before.
    from gateway.layers.dedup.blobs import CONDEMNED, write_marker

    assert await _reason(write_marker(inner, digest, CONDEMNED, marker)) is (
        Reason.PRECONDITION_FAILED
    )
    await put(layer, "new", data)
    assert await get(layer, "new") == data


async def test_a_put_after_the_condemnation_revives_the_blob(layer: DedupBackend) -> None:
    """The collector condemned the marker but has not deleted the blob when
    a Put of the same content arrives: the Put promotes its own bytes (a new
    generation), so the collector's conditioned delete fails."""
    from gateway.layers.dedup.blobs import CONDEMNED, delete_if, write_marker

    data = b"condemned content"
    digest = hashlib.sha256(data).digest()
    await put(layer, "old", data)
    await layer.delete("old")
    inner = layer.inner
    blob = await inner.head(blob_key(digest))
    marker = await inner.head(marker_key(digest))
    condemned = await write_marker(inner, digest, CONDEMNED, marker)
    await put(layer, "new", data)  # the Put, between the collector's steps
    gone = await delete_if(inner, blob_key(digest), Conditions(if_generation_match=blob.generation))
    assert gone is False
    await delete_if(inner, marker_key(digest), Conditions(if_generation_match=condemned.generation))
    assert await get(layer, "new") == data
    assert (await layer.collect_garbage(now=LATER)).blobs_deleted == 0
    assert await get(layer, "new") == data


async def test_a_killed_write_leaves_only_what_the_sweep_removes(layer: DedupBackend) -> None:
    """A gateway killed between its bytes and its reference leaves a temp
    object, or a blob and marker no reference names: swept past the grace."""
    inner = layer.inner
    await put(inner, temp_key(), b"bytes of a killed write")
    data = b"promoted, never referenced"
    temp = temp_key()
    await put(inner, temp, data)
    await secure(inner, hashlib.sha256(data).digest(), temp)
    assert len(await _stored(inner)) == 3  # a temp, a blob, its marker
    swept = await layer.collect_garbage()
    assert (swept.temps_deleted, swept.blobs_deleted) == (0, 0)
    swept = await layer.collect_garbage(now=LATER)
    assert (swept.temps_deleted, swept.blobs_deleted) == (1, 1)
    assert await _stored(inner) == []


async def test_a_dry_run_counts_what_the_sweep_deletes_and_keeps_it(layer: DedupBackend) -> None:
    """`storagegw cleanup --dry-run`: the same counts and bytes as the sweep
    that follows it, and every stored object still there."""
    inner = layer.inner
    killed = b"bytes of a killed write"
    await put(inner, temp_key(), killed)
    garbage = b"no reference names these bytes" * 10
    await put(layer, "gone", garbage)
    await layer.delete("gone")
    await put(layer, "kept", b"named")
    stored = await _stored(inner)
    dry = await layer.collect_garbage(now=LATER, dry_run=True)
    assert (dry.temps_deleted, dry.blobs_deleted) == (1, 1)
    assert dry.bytes_deleted == len(killed) + len(garbage)
    assert await _stored(inner) == stored
    swept = await layer.collect_garbage(now=LATER)
    assert (swept.temps_deleted, swept.blobs_deleted, swept.bytes_deleted) == (
        dry.temps_deleted,
        dry.blobs_deleted,
        dry.bytes_deleted,
    )
    assert await _blobs(inner) == [hashlib.sha256(b"named").digest()]
    assert await get(layer, "kept") == b"named"


async def test_copy_is_a_new_reference(layer: DedupBackend) -> None:
    data = b"copied without moving a byte" * 100
    await put(layer, "src", data, WriteOptions(content_type="text/x", metadata={"m": "1"}))
    before = await _stored(layer.inner)
    copied = await layer.copy(CopyRequest("src", "dst"))
    assert (copied.size, copied.content_type, dict(copied.metadata)) == (
        len(data),
        "text/x",
        {"m": "1"},
    )
    assert await _stored(layer.inner) == before
    await layer.delete("src")
    await layer.collect_garbage(now=LATER)
    assert await get(layer, "dst") == data


async def test_reserved_keys_are_refused_and_hidden(layer: DedupBackend) -> None:
    await put(layer, "visible", b"x")
    assert await _reason(layer.head(".cas/anything")) is Reason.INVALID_KEY
    assert await _reason(put(layer, ".cas/tmp/mine", b"x")) is Reason.INVALID_KEY
    page = await layer.list(ListQuery(page_size=100, delimiter="/"))
    assert ([m.key for m in page.objects], page.common_prefixes) == (["visible"], [])
    page = await layer.list(ListQuery(page_size=100))
    assert [m.key for m in page.objects] == ["visible"]


async def test_a_delete_racing_a_put_of_the_same_content(layer: DedupBackend) -> None:
    """Put b (same content as a) has secured the blob when Delete a runs and
    a sweep passes before b's reference is written: b's object survives."""
    from gateway.layers.dedup.references import write_reference

    data = b"deleted and put again"
    digest = hashlib.sha256(data).digest()
    await put(layer, "a", data)
    inner = layer.inner
    temp = temp_key()
    await put(inner, temp, data)
    touched = await secure(inner, digest, temp)  # Put b, up to its reference
    assert touched is not None
    assert await layer.delete("a") is True  # Delete a
    assert (await layer.collect_garbage()).blobs_deleted == 0  # a sweep, within the grace
    pointer = Pointer(digest, len(data), crc32c(data))
    await write_reference(inner, layer.grace_s, "b", pointer, WriteOptions(), touched)
    assert (await layer.collect_garbage(now=LATER)).blobs_deleted == 0
    assert await get(layer, "b") == data


async def test_a_write_of_promised_stored_content_stores_no_byte(layer: DedupBackend) -> None:
    data = b"stored once, promised again" * 100
    await put(layer, "first", data)
    digest = hashlib.sha256(data).digest()
    writer = await layer.open_write("second", WriteOptions(sha256_hint=digest))
    await writer.write(b"bytes the pump would refuse; the layer stores none of them")
    meta = await writer.commit(drivers.sums(data))
    assert (meta.size, meta.sha256) == (len(data), digest)
    assert await get(layer, "second") == data
    assert not [k for k in await _stored(layer.inner) if k.startswith(".cas/tmp/")]
    # A promise of content not stored yet: the bytes are stored as usual.
    new = b"not stored yet"
    hinted = WriteOptions(sha256_hint=hashlib.sha256(new).digest())
    await put(layer, "third", new, hinted)
    assert await get(layer, "third") == new


async def test_a_marker_touched_lately_is_not_written_again(layer: DedupBackend) -> None:
    """Within a quarter of the grace period of the last touch, a Put of the
    same content reads the marker and writes its reference only."""
    data = b"popular content"
    await put(layer, "a", data)
    marker = await layer.inner.head(marker_key(hashlib.sha256(data).digest()))
    await put(layer, "b", data)
    again = await layer.inner.head(marker_key(hashlib.sha256(data).digest()))
    assert again.generation == marker.generation
    assert (await layer.collect_garbage(now=LATER)).blobs_deleted == 0
    assert await get(layer, "b") == data

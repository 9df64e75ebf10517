"""Driver-level tests of the GCS backend's writes: stored checksums, nothing visible
until commit, aborts and cancellations that leave nothing, wrong checksums refused,
create-only and generation conditions.

Against a real fake-gcs-server over HTTP. The emulator checks no credentials and no
signatures, and ignores some preconditions (tests/backends/test_gcs_emulator_gaps.py);
these tests stay on what it gets right."""

from __future__ import annotations

import pytest

from gateway.backends.gcs.backend import GcsBackend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, WriteOptions
from tests.backends.gcs.emulator_bucket import CHUNK, KIB, get, put, stored_names
from tests.drivers import cancel_while_writing, patterned_bytes, sums
from tests.fake_gcs_server import FakeGcsServer, emulator_client


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
    data = patterned_bytes(size)
    options = WriteOptions(content_type="text/plain", metadata={"Colour": "blue", "n": "1"})
    meta = await put(backend, "dir/obj", data, options)
    expected = sums(data)
    assert (meta.key, meta.size) == ("dir/obj", size)
    assert (meta.crc32c, meta.sha256) == (expected.crc32c, expected.sha256)
    assert meta.etag == str(meta.generation)
    assert stored_names(fake_gcs, bucket) == ["gw/dir/obj"]
    head = await backend.head("dir/obj")
    assert head == meta
    assert head.content_type == "text/plain"
    assert dict(head.metadata) == {"Colour": "blue", "n": "1"}  # GCS keeps the case
    assert await get(backend, "dir/obj", chunk_size=64 * KIB) == data


async def test_checksums_stored_in_metadata(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    for key, data in (("small", b"hello"), ("resumable", patterned_bytes(CHUNK * 2 + 5))):
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
    data = patterned_bytes(5 * CHUNK)
    await writer.write(data[: 3 * CHUNK])
    assert writer.session_url is not None  # type: ignore[attr-defined]
    assert stored_names(fake_gcs, bucket) == []
    await writer.write(data[3 * CHUNK :])
    meta = await writer.commit(sums(data))
    assert meta.size == len(data)
    assert await get(backend, "big", chunk_size=100_000) == data


async def test_abort_leaves_nothing(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    writer = await backend.open_write("gone", WriteOptions())
    await writer.write(patterned_bytes(3 * CHUNK))
    await writer.abort()
    await writer.abort()  # idempotent
    assert stored_names(fake_gcs, bucket) == []
    with pytest.raises(GatewayError):
        await writer.write(b"x")


async def test_cancelled_writer_leaves_nothing(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    writer = await backend.open_write("cancelled", WriteOptions())

    def begun() -> bool:  # once the writer holds its resumable session
        return writer.session_url is not None  # type: ignore[attr-defined]

    await cancel_while_writing(writer, CHUNK, begun)
    assert stored_names(fake_gcs, bucket) == []


async def test_wrong_checksum_is_refused_and_removed(
    backend: GcsBackend, fake_gcs: FakeGcsServer, bucket: str
) -> None:
    for data in (b"small", patterned_bytes(2 * CHUNK + 1)):
        writer = await backend.open_write("k", WriteOptions())
        await writer.write(data)
        wrong = sums(data + b"!")
        with pytest.raises(GatewayError) as caught:
            await writer.commit(type(wrong)(wrong.crc32c, wrong.sha256, len(data)))
        assert caught.value.reason is Reason.CHECKSUM_MISMATCH
        assert stored_names(fake_gcs, bucket) == []


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

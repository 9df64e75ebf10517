"""Driver-level tests of the S3 backend's writes: multipart parts uploaded while the
stream arrives, stored checksums, aborts, cancellations and stale uploads that leave
nothing behind.

Against a real moto server over HTTP; the behaviour all drivers share is in
tests/backends/test_backend_conformance.py. moto does not verify signatures, so wrong
credentials are not tested here (they are on Ceph RGW)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.backends.s3 import backend as s3_module
from gateway.backends.s3.backend import S3Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import WriteOptions
from tests.backends.s3.moto_bucket import (
    BUCKET,
    MIB,
    driver_settings,
    get,
    pending_uploads,
    put,
)
from tests.drivers import cancel_while_writing, patterned_bytes, sums
from tests.store_requests import StoreRequests


async def test_is_a_backend(backend: S3Backend) -> None:
    assert backend.capabilities.presigner is not None
    assert backend.capabilities.upload_counter is None  # S3 does not count unfinished bytes
    assert backend.kind == "s3"
    await backend.probe()


@pytest.mark.parametrize(
    "size", [0, 1000, 5 * MIB, 5 * MIB + 1, 15 * MIB + 12345], ids=lambda n: f"{n}B"
)
async def test_round_trip(backend: S3Backend, s3: Any, size: int) -> None:
    data = patterned_bytes(size)
    options = WriteOptions(content_type="text/plain", metadata={"Colour": "blue", "n": "1"})
    meta = await put(backend, "dir/obj", data, options)
    expected = sums(data)
    assert meta.key == "dir/obj"
    assert meta.size == size
    assert (meta.crc32c, meta.sha256) == (expected.crc32c, expected.sha256)
    multipart = size > 5 * MIB
    assert meta.etag.endswith(f"-{-(-size // (5 * MIB))}") == multipart
    assert ("-" in meta.etag) == multipart
    stored = s3.head_object(Bucket=BUCKET, Key="gw/dir/obj")
    assert stored["ContentLength"] == size
    head = await backend.head("dir/obj")
    assert head == meta
    assert head.content_type == "text/plain"
    assert dict(head.metadata) == {"colour": "blue", "n": "1"}  # S3 lower-cases keys
    assert await get(backend, "dir/obj", chunk_size=64 * 1024) == data
    assert pending_uploads(s3) == []


async def test_a_small_put_is_one_request_and_says_what_a_head_says(
    s3: Any, moto_endpoint: str
) -> None:
    operations = StoreRequests()
    driver = S3Backend(driver_settings(moto_endpoint), operations)
    try:
        options = WriteOptions(content_type="text/plain", metadata={"Team": "storage", "n": "1"})
        meta = await put(driver, "small", patterned_bytes(4096), options)
        assert operations.operations() == ["PutObject"]
        head = await driver.head("small")
        assert head == meta
        assert dict(meta.metadata) == {"team": "storage", "n": "1"}
        assert (meta.size, meta.crc32c) == (4096, sums(patterned_bytes(4096)).crc32c)
        assert meta.update_time_ns > 0
        # Metadata S3 may rewrite (surrounding spaces) is read back instead.
        operations.sent.clear()
        padded = await put(driver, "padded", b"x", WriteOptions(metadata={"note": " a  b "}))
        assert operations.operations() == ["PutObject", "HeadObject"]
        assert await driver.head("padded") == padded
    finally:
        await driver.close()


async def test_checksums_stored_in_metadata(backend: S3Backend, s3: Any) -> None:
    data = b"hello"
    await put(backend, "k", data, WriteOptions(metadata={"a": "1"}))
    stored = s3.head_object(Bucket=BUCKET, Key="gw/k")["Metadata"]
    generation = stored.pop("sgw-generation")
    assert stored == {"a": "1", "sgw-crc32c": f"{sums(data).crc32c:08x}"} | {
        "sgw-sha256": sums(data).sha256.hex()
    }
    assert int(generation) == (await backend.head("k")).generation


async def test_parts_upload_while_the_stream_arrives(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("big", WriteOptions())
    data = patterned_bytes(11 * MIB)
    await writer.write(data[: 6 * MIB])
    # More than one part arrived: the multipart upload exists before commit.
    uploads = pending_uploads(s3)
    assert [u["Key"] for u in uploads] == ["gw/big"]
    await writer.write(data[6 * MIB :])
    meta = await writer.commit(sums(data))
    assert meta.etag.endswith("-3")
    assert pending_uploads(s3) == []


async def test_abort_after_parts_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("gone", WriteOptions())
    await writer.write(patterned_bytes(12 * MIB))
    assert len(pending_uploads(s3)) == 1
    await writer.abort()
    await writer.abort()  # idempotent
    assert pending_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


async def test_exception_mid_stream_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    async def source() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield patterned_bytes(4 * MIB)
        raise RuntimeError("client went away")

    async def upload() -> None:
        writer = await backend.open_write("broken", WriteOptions())
        try:
            async for chunk in source():
                await writer.write(chunk)
        except BaseException:
            await writer.abort()
            raise

    with pytest.raises(RuntimeError):
        await upload()
    assert pending_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


async def test_cancelled_writer_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("cancelled", WriteOptions())
    await cancel_while_writing(writer, MIB, lambda: len(pending_uploads(s3)) == 1)
    assert pending_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    with pytest.raises(GatewayError):
        await writer.write(b"x")


async def test_failed_part_upload_fails_the_write(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("k", WriteOptions())
    await writer.write(patterned_bytes(6 * MIB))
    (upload,) = pending_uploads(s3)
    s3.abort_multipart_upload(Bucket=BUCKET, Key="gw/k", UploadId=upload["UploadId"])
    data = patterned_bytes(12 * MIB)

    async def finish() -> None:
        for i in range(0, len(data), MIB):
            await writer.write(data[i : i + MIB])
        await writer.commit(sums(data))

    with pytest.raises(GatewayError) as caught:
        await finish()
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
    await writer.abort()
    assert pending_uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


async def test_abort_stale_uploads(
    backend: S3Backend, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_multipart_upload(Bucket=BUCKET, Key="gw/old")
    s3.create_multipart_upload(Bucket=BUCKET, Key="elsewhere")  # outside the prefix
    # moto reports a fixed Initiated time, so the clock is moved relative to it.
    initiated = pending_uploads(s3)[0]["Initiated"].timestamp()
    monkeypatch.setattr(s3_module, "_now", lambda: initiated + 60)
    assert await backend.abort_stale_uploads(3600) == 0
    assert len(pending_uploads(s3)) == 2
    monkeypatch.setattr(s3_module, "_now", lambda: initiated + 7200)
    assert await backend.abort_stale_uploads(3600, dry_run=True) == 1
    assert len(pending_uploads(s3)) == 2
    assert await backend.abort_stale_uploads(3600) == 1
    assert [u["Key"] for u in pending_uploads(s3)] == ["elsewhere"]

"""Driver-level tests of what is particular to the S3 backend (multipart
parts, aborts, stored checksums, presigning, stale uploads), against a real
moto server over HTTP; the shared behaviour is in test_backend_conformance.py.

moto does not verify signatures, so wrong credentials are not tested here
(they are on Ceph RGW).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from gateway.backends.s3 import backend as s3_module
from gateway.backends.s3.backend import S3Backend, S3Settings
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests import drivers
from tests.drivers import list_all, sums
from tests.moto_server import MotoServer
from tests.store_requests import StoreRequests

MIB = 1024 * 1024
BUCKET = "sgw-test"
KEYS = {"access_key": "testing", "secret_key": "testing-secret"}

put = functools.partial(drivers.put, chunk=256 * 1024)
get = drivers.get


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_endpoint(moto_server: MotoServer) -> str:
    return moto_server.endpoint


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=30).raise_for_status()
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def _settings(endpoint: str, **overrides: Any) -> S3Settings:
    values: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": "gw/",
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "part_size": 5 * MIB,
        "concurrency": 2,
        **KEYS,
        **overrides,
    }
    return S3Settings(**values)


@pytest.fixture
async def backend(s3: Any, moto_endpoint: str) -> AsyncIterator[S3Backend]:
    driver = S3Backend(_settings(moto_endpoint))
    yield driver
    await driver.close()


def _data(size: int) -> bytes:
    block = bytes(range(251)) * 4177  # a prime-length pattern: misplaced bytes show
    return (block * (size // len(block) + 1))[:size]


def _uploads(s3: Any) -> list[Any]:
    return list(s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


async def test_is_a_backend(backend: S3Backend) -> None:
    assert backend.capabilities.presigner is not None
    assert backend.capabilities.upload_counter is None  # S3 does not count unfinished bytes
    assert backend.kind == "s3"
    await backend.probe()


@pytest.mark.parametrize(
    "size", [0, 1000, 5 * MIB, 5 * MIB + 1, 15 * MIB + 12345], ids=lambda n: f"{n}B"
)
async def test_round_trip(backend: S3Backend, s3: Any, size: int) -> None:
    data = _data(size)
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
    assert _uploads(s3) == []


async def test_a_small_put_is_one_request_and_says_what_a_head_says(
    s3: Any, moto_endpoint: str
) -> None:
    operations = StoreRequests()
    driver = S3Backend(_settings(moto_endpoint), operations)
    try:
        options = WriteOptions(content_type="text/plain", metadata={"Team": "storage", "n": "1"})
        meta = await put(driver, "small", _data(4096), options)
        assert operations.operations() == ["PutObject"]
        head = await driver.head("small")
        assert head == meta
        assert dict(meta.metadata) == {"team": "storage", "n": "1"}
        assert (meta.size, meta.crc32c) == (4096, sums(_data(4096)).crc32c)
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
    data = _data(11 * MIB)
    await writer.write(data[: 6 * MIB])
    # More than one part arrived: the multipart upload exists before commit.
    uploads = _uploads(s3)
    assert [u["Key"] for u in uploads] == ["gw/big"]
    await writer.write(data[6 * MIB :])
    meta = await writer.commit(sums(data))
    assert meta.etag.endswith("-3")
    assert _uploads(s3) == []


async def test_abort_after_parts_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("gone", WriteOptions())
    await writer.write(_data(12 * MIB))
    assert len(_uploads(s3)) == 1
    await writer.abort()
    await writer.abort()  # idempotent
    assert _uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


async def test_exception_mid_stream_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    async def source() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield _data(4 * MIB)
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
    assert _uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


async def test_cancelled_writer_leaves_nothing(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("cancelled", WriteOptions())
    started = asyncio.Event()

    async def stream() -> None:
        while True:
            await writer.write(_data(MIB))
            if len(_uploads(s3)) == 1:
                started.set()

    task = asyncio.create_task(stream())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    with pytest.raises(GatewayError):
        await writer.write(b"x")


async def test_failed_part_upload_fails_the_write(backend: S3Backend, s3: Any) -> None:
    writer = await backend.open_write("k", WriteOptions())
    await writer.write(_data(6 * MIB))
    (upload,) = _uploads(s3)
    s3.abort_multipart_upload(Bucket=BUCKET, Key="gw/k", UploadId=upload["UploadId"])
    data = _data(12 * MIB)

    async def finish() -> None:
        for i in range(0, len(data), MIB):
            await writer.write(data[i : i + MIB])
        await writer.commit(sums(data))

    with pytest.raises(GatewayError) as caught:
        await finish()
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
    await writer.abort()
    assert _uploads(s3) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


@pytest.mark.parametrize("size", [10, 6 * MIB], ids=["single", "multipart"])
async def test_create_only_conflict(backend: S3Backend, s3: Any, size: int) -> None:
    await put(backend, "k", b"first")
    for conditions in (Conditions(if_none_match="*"), Conditions(if_generation_match=0)):
        with pytest.raises(GatewayError) as caught:
            await put(backend, "k", _data(size), WriteOptions(conditions=conditions))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert await get(backend, "k") == b"first"
    assert _uploads(s3) == []
    meta = await put(backend, "new", b"x", WriteOptions(conditions=Conditions(if_none_match="*")))
    assert meta.size == 1


@pytest.mark.parametrize("size", [10, 6 * MIB], ids=["single", "multipart"])
async def test_if_match(backend: S3Backend, s3: Any, size: int) -> None:
    first = await put(backend, "k", b"first")
    for conditions in (
        Conditions(if_match="0123456789abcdef0123456789abcdef"),
        Conditions(if_generation_match=first.generation + 1),
        Conditions(if_generation_not_match=first.generation),
    ):
        with pytest.raises(GatewayError) as caught:
            await put(backend, "k", _data(size), WriteOptions(conditions=conditions))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
    with pytest.raises(GatewayError) as caught:
        await put(backend, "missing", b"x", WriteOptions(conditions=Conditions(if_match="abc")))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    data = _data(size)
    second = await put(backend, "k", data, WriteOptions(conditions=Conditions(if_match=first.etag)))
    assert await get(backend, "k") == data
    third = await put(
        backend,
        "k",
        b"3",
        WriteOptions(conditions=Conditions(if_generation_match=second.generation)),
    )
    assert third.size == 1
    assert _uploads(s3) == []


async def test_list(backend: S3Backend, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="outside", Body=b"not under the prefix")
    keys = [f"a/{i:02d}" for i in range(40)] + [f"b/{i}/x" for i in range(5)] + ["c", "é", "z/"]
    for key in keys:
        await put(backend, key, key.encode())
    assert await list_all(backend, page_size=7) == (sorted(keys, key=str.encode), [])
    assert await list_all(backend, prefix="a/", page_size=13) == (
        [k for k in keys if k.startswith("a/")],
        [],
    )
    assert await list_all(backend, delimiter="/", page_size=2) == (
        ["c", "é"],
        ["a/", "b/", "z/"],
    )
    assert await list_all(backend, prefix="b/", delimiter="/") == (
        [],
        [f"b/{i}/" for i in range(5)],
    )
    page = await backend.list(ListQuery(page_size=10, prefix="a/", start_after="a/37"))
    assert [m.key for m in page.objects] == ["a/38", "a/39"]
    assert page.next_page_token == ""
    first = (await backend.list(ListQuery(page_size=1))).objects[0]
    assert first.key == "a/00"
    assert first.size == 4
    assert first.etag == (await backend.head("a/00")).etag
    assert first.generation == 0  # listings carry no metadata: unknown there
    with pytest.raises(GatewayError) as caught:
        await backend.list(ListQuery(page_size=10, page_token="not-a-token"))
    assert caught.value.reason is Reason.INVALID_PAGE_TOKEN


async def test_copy_of_a_multipart_object_in_parts(
    backend: S3Backend, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "COPY_OBJECT_MAX", 6 * MIB)
    data = _data(12 * MIB + 7)
    source = await put(backend, "src", data, WriteOptions(metadata={"a": "1"}))
    assert source.etag.endswith("-3")
    head = await backend.head("src")
    assert (head.crc32c, head.sha256) == (source.crc32c, source.sha256)  # from tags
    meta = await backend.copy(CopyRequest("src", "dst"))
    assert "-" in meta.etag
    assert await get(backend, "dst", chunk_size=MIB) == data
    head = await backend.head("dst")
    assert (head.crc32c, head.sha256, dict(head.metadata)) == (
        source.crc32c,
        source.sha256,
        {"a": "1"},
    )
    assert _uploads(s3) == []


async def test_missing_bucket(s3: Any, moto_endpoint: str) -> None:
    driver = S3Backend(_settings(moto_endpoint, bucket="no-such-bucket"))
    try:
        await drivers.assert_bucket_missing(driver, "no-such-bucket", put(driver, "k", b"abc"))
    finally:
        await driver.close()


async def test_unreachable_endpoint() -> None:
    driver = S3Backend(_settings(f"http://127.0.0.1:{_free_port()}"))
    try:
        with pytest.raises(GatewayError) as caught:
            await driver.probe()
        assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
        assert "testing-secret" not in caught.value.message
    finally:
        await driver.close()


async def test_presigned_urls(backend: S3Backend) -> None:
    put = await drivers.sign(backend, "dir/up.txt", "PUT", content_type="text/plain")
    assert put.url.startswith(f"{backend.settings.endpoint_url}/{BUCKET}/gw/dir/up.txt?")
    assert "X-Amz-Signature=" in put.url
    assert "testing-secret" not in put.url
    assert put.headers == {"Content-Type": "text/plain"}
    assert put.form_fields == {}
    async with httpx.AsyncClient() as http:
        response = await http.put(put.url, content=b"uploaded", headers=put.headers)
        assert response.status_code == 200
        meta = await backend.head("dir/up.txt")
        assert (meta.size, meta.content_type) == (8, "text/plain")
        get = await drivers.sign(backend, "dir/up.txt", "GET", download=True, filename="résumé.txt")
        assert get.headers == {}
        response = await http.get(get.url)
        assert response.status_code == 200
        assert response.content == b"uploaded"
        assert response.headers["content-disposition"].startswith("attachment;")
    with pytest.raises(GatewayError) as caught:
        await drivers.sign(backend, "k", "PUT", max_size=10)
    assert caught.value.reason is Reason.UNSUPPORTED_OPTION


async def test_presigned_post_policy(backend: S3Backend) -> None:
    post = await drivers.sign(
        backend, "dir/form.txt", "POST", content_type="text/plain", min_size=2, max_size=10
    )
    assert post.url == f"{backend.settings.endpoint_url}/{BUCKET}"
    assert post.headers == {}
    assert post.form_fields["key"] == "gw/dir/form.txt"
    assert post.form_fields["Content-Type"] == "text/plain"
    assert "testing-secret" not in str(post.form_fields)
    # The policy S3 checks: the exact key, the size range and the type.
    policy = json.loads(base64.b64decode(post.form_fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 2, 10] in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert {"key": "gw/dir/form.txt"} in conditions
    async with httpx.AsyncClient() as http:
        response = await http.post(
            post.url, data=post.form_fields, files={"file": ("form.txt", b"by form")}
        )
        assert response.status_code in (200, 204), response.text
    meta = await backend.head("dir/form.txt")
    assert (meta.size, meta.content_type) == (7, "text/plain")


async def test_abort_stale_uploads(
    backend: S3Backend, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_multipart_upload(Bucket=BUCKET, Key="gw/old")
    s3.create_multipart_upload(Bucket=BUCKET, Key="elsewhere")  # outside the prefix
    # moto reports a fixed Initiated time, so the clock is moved relative to it.
    initiated = _uploads(s3)[0]["Initiated"].timestamp()
    monkeypatch.setattr(s3_module, "_now", lambda: initiated + 60)
    assert await backend.abort_stale_uploads(3600) == 0
    assert len(_uploads(s3)) == 2
    monkeypatch.setattr(s3_module, "_now", lambda: initiated + 7200)
    assert await backend.abort_stale_uploads(3600, dry_run=True) == 1
    assert len(_uploads(s3)) == 2
    assert await backend.abort_stale_uploads(3600) == 1
    assert [u["Key"] for u in _uploads(s3)] == ["elsewhere"]


async def test_one_client_and_close(backend: S3Backend) -> None:
    await put(backend, "k", b"abc")
    with contextlib.suppress(GatewayError):
        await backend.head("nope")
    await backend.close()
    with pytest.raises(GatewayError) as caught:
        await backend.head("k")
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE

"""Driver-level tests of the S3 backend's conditions, listing and copies (in parts for
multipart objects).

Against a real moto server over HTTP; the behaviour all drivers share is in
tests/backends/test_backend_conformance.py. moto does not verify signatures, so wrong
credentials are not tested here (they are on Ceph RGW)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.backends.s3 import backend as s3_module
from gateway.backends.s3.backend import S3Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests.backends.s3.moto_bucket import BUCKET, MIB, get, pending_uploads, put
from tests.drivers import list_all, patterned_bytes


@pytest.mark.parametrize("size", [10, 6 * MIB], ids=["single", "multipart"])
async def test_create_only_conflict(backend: S3Backend, s3: Any, size: int) -> None:
    await put(backend, "k", b"first")
    for conditions in (Conditions(if_none_match="*"), Conditions(if_generation_match=0)):
        with pytest.raises(GatewayError) as caught:
            await put(backend, "k", patterned_bytes(size), WriteOptions(conditions=conditions))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert await get(backend, "k") == b"first"
    assert pending_uploads(s3) == []
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
            await put(backend, "k", patterned_bytes(size), WriteOptions(conditions=conditions))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
    with pytest.raises(GatewayError) as caught:
        await put(backend, "missing", b"x", WriteOptions(conditions=Conditions(if_match="abc")))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    data = patterned_bytes(size)
    second = await put(backend, "k", data, WriteOptions(conditions=Conditions(if_match=first.etag)))
    assert await get(backend, "k") == data
    third = await put(
        backend,
        "k",
        b"3",
        WriteOptions(conditions=Conditions(if_generation_match=second.generation)),
    )
    assert third.size == 1
    assert pending_uploads(s3) == []


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
    data = patterned_bytes(12 * MIB + 7)
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
    assert pending_uploads(s3) == []

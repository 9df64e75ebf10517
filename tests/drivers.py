"""Helpers for the driver-level tests: write, read and list through the Protocol."""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from typing import Any

import pytest

from gateway.backends.base import Backend, PresigningBackend
from gateway.domain.checksums import crc32c
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, Conditions, ObjectMeta, Presigned, WriteOptions


def sums(data: bytes) -> Checksums:
    return Checksums(crc32c(data), hashlib.sha256(data).digest(), len(data))


async def put(
    backend: Backend,
    key: str,
    data: bytes,
    options: WriteOptions | None = None,
    chunk: int = 4096,
) -> ObjectMeta:
    writer = await backend.open_write(key, options or WriteOptions())
    try:
        for i in range(0, len(data), chunk):
            await writer.write(data[i : i + chunk])
        return await writer.commit(sums(data))
    except BaseException:
        await writer.abort()
        raise


async def get(
    backend: Backend, key: str, offset: int = 0, limit: int | None = None, chunk_size: int = 1000
) -> bytes:
    reader = await backend.open_read(key, offset, limit, Conditions())
    try:
        return b"".join([c async for c in reader.chunks(chunk_size)])
    finally:
        await reader.close()


async def list_all(
    backend: Backend, prefix: str = "", delimiter: str = "", page_size: int = 13
) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    token = ""
    while True:
        page = await backend.list(prefix, delimiter, "", page_size, token)
        assert len(page.objects) + len(page.common_prefixes) <= page_size
        keys += [meta.key for meta in page.objects]
        prefixes += page.common_prefixes
        token = page.next_page_token
        if not token:
            return keys, prefixes


async def sign(
    backend: PresigningBackend, key: str, method: str, expires_in_s: int = 300, **options: Any
) -> Presigned:
    """backend.sign_url with every option at its default unless given."""
    settings: dict[str, Any] = {
        "download": False,
        "filename": "",
        "content_type": "",
        "max_size": None,
        "min_size": None,
        **options,
    }
    return await backend.sign_url(key, method, expires_in_s, **settings)


async def assert_bucket_missing(
    backend: Backend, bucket: str, *more_calls: Coroutine[Any, Any, Any]
) -> None:
    """Every object call on backend (whose store bucket does not exist) is
    BUCKET_NOT_FOUND naming it, and the health probe BACKEND_UNAVAILABLE."""
    calls = [
        backend.head("k"),
        backend.open_read("k", 0, None, Conditions()),
        *more_calls,
        backend.list("", "", "", 10, ""),
        backend.delete("k"),
    ]
    for call in calls:
        with pytest.raises(GatewayError) as caught:
            await call
        assert caught.value.reason is Reason.BUCKET_NOT_FOUND
        assert bucket in caught.value.message
    with pytest.raises(GatewayError) as caught:
        await backend.probe()
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE


def utf8(key: str) -> bytes:
    return key.encode()

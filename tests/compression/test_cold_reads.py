"""What a cold read of a compressed bucket (the object's layout not yet known:
after a restart, on another replica) costs in requests to the real store,
counted by the driver's StoreObserver: an object stored as it is one request,
as in any bucket; a compressed one at most two where the first read serves,
three where it cannot (a range far into an object too long to read whole)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.backends import registry
from gateway.backends.base import Backend
from gateway.backends.observer import ObservedRequest, StoreRequest
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, WriteOptions
from gateway.layers.compression.backend import CompressingBackend
from gateway.layers.compression.cold import HELD_LIMIT
from gateway.layers.compression.layouts import ENCODING
from gateway.layers.compression.settings import CompressionSettings
from tests import drivers
from tests.compression.stored import json_log, noise
from tests.drivers import get, put

MIB = 1024 * 1024
JSON = WriteOptions(content_type="application/json")


class _Requests:
    """A StoreObserver keeping each request the driver sends: (method, operation)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def request_started(self, request: StoreRequest) -> ObservedRequest | None:
        self.sent.append((request.method, request.operation))
        return None

    def fsynced(self, path: str, started_ns: int, ended_ns: int) -> None:
        pass


@dataclasses.dataclass
class Store:
    """A compressed bucket's store, seen through fresh buckets that know no layout."""

    name: str
    driver: Backend
    settings: CompressionSettings
    requests: _Requests
    bucket: CompressingBackend

    def cold(self) -> CompressingBackend:
        """A bucket on the same store and driver remembering nothing (as
        another replica, or after a restart); the request count starts anew."""
        self.requests.sent.clear()
        return CompressingBackend(self.driver, self.settings)

    @property
    def count(self) -> int:
        return len(self.requests.sent)

    def head_first(self) -> int:
        """The requests a read sends before its first read of bytes: GCS's
        driver asks for the object's metadata apart (a head), S3's reads
        both at once."""
        return 1 if self.name.startswith("gcs") else 0


@pytest.fixture(params=["s3-ceph-zstd", "gcs-zstd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    under_test = drivers.DRIVERS[request.param]
    env = {"STORAGE_BASE_PATH": str(tmp_path), **under_test.start(request)}
    env[under_test.prefix_setting] = drivers.KEY_PREFIX
    bucket_config = config_module.load(env).buckets["default"]
    settings = bucket_config.compression
    assert settings is not None
    requests = _Requests()
    driver = registry.build(bucket_config.backend, bucket_config.settings, requests)
    try:
        await driver.probe()
        bucket = CompressingBackend(driver, settings)
        yield Store(request.param, driver, settings, requests, bucket)
    finally:
        await driver.close()


async def _stored_size(store: Store, key: str) -> int:
    meta = await store.driver.head(key)
    assert meta.metadata.get(ENCODING) == "zstd-seekable"
    return meta.size


async def test_a_small_compressed_object_costs_a_read_or_two(store: Store) -> None:
    data = json_log(3 * MIB + 12_345)
    await put(store.bucket, "small.json", data, JSON)
    size = await _stored_size(store, "small.json")
    assert size <= HELD_LIMIT
    assert store.settings.frame_size == MIB
    # Whole: its first read holds it all, the tail and the frames.
    assert await get(store.cold(), "small.json", chunk_size=64 * 1024) == data
    assert store.count == 1 + store.head_first()
    # A range across frames within the stored size: the first read, then
    # the object whole.
    offset = size // 2
    cold = store.cold()
    assert await get(cold, "small.json", offset, MIB) == data[offset : offset + MIB]
    assert store.count == 2 + store.head_first()
    # A range across frames past the stored size: refused by the store,
    # then the object's end (here all of it) read with its metadata.
    offset = 2 * MIB - 100
    assert await get(store.cold(), "small.json", offset, 300) == data[offset : offset + 300]
    assert store.count <= 2 + 2 * store.head_first()


async def test_a_longer_compressed_object_costs_two_reads_or_three(store: Store) -> None:
    data = json_log(12 * MIB + 999, seed=3)
    await put(store.bucket, "long.json", data, JSON)
    size = await _stored_size(store, "long.json")
    assert HELD_LIMIT < size < 5 * MIB  # one PutObject (no multipart object's tags to read)
    # Whole: the first read serves the frames once the tail is read.
    assert await get(store.cold(), "long.json", chunk_size=256 * 1024) == data
    assert store.count <= 2 + store.head_first()
    # From its start: likewise.
    assert await get(store.cold(), "long.json", 0, MIB + 10) == data[: MIB + 10]
    assert store.count <= 2 + store.head_first()
    # Far into it: the first read holds nothing of use; the tail, the frames.
    for offset in (size - 5, 9 * MIB - 5):
        assert await get(store.cold(), "long.json", offset, 10) == data[offset : offset + 10]
        assert store.count <= 3 + store.head_first()


async def test_an_object_stored_as_it_is_costs_one_read(store: Store) -> None:
    data = noise(3 * MIB)
    await put(store.bucket, "noise.json", data, JSON)
    assert ENCODING not in (await store.driver.head("noise.json")).metadata
    assert await get(store.cold(), "noise.json", chunk_size=MIB) == data
    assert store.count == 1 + store.head_first()
    assert await get(store.cold(), "noise.json", MIB - 3, 10) == data[MIB - 3 : MIB + 7]
    assert store.count == 1 + store.head_first()


async def test_conditions_are_judged_on_the_object_read(store: Store) -> None:
    data = json_log(3 * MIB)
    stale = await put(store.bucket, "c.json", data, JSON)
    current = await put(store.bucket, "c.json", data[::-1], JSON)
    assert stale.etag != current.etag
    for offset, limit in ((0, None), (MIB, 10), (2 * MIB + 5, 10)):
        cold = store.cold()
        with pytest.raises(GatewayError) as caught:
            await cold.open_read("c.json", offset, limit, Conditions(if_match=stale.etag))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
        assert store.count == 1  # refused: nothing read after it
        cold = store.cold()
        with pytest.raises(GatewayError) as caught:
            await cold.open_read("c.json", offset, limit, Conditions(if_none_match=current.etag))
        assert caught.value.reason is Reason.NOT_MODIFIED
        assert store.count == 1
        matching = Conditions(if_match=current.etag)
        reader = await store.cold().open_read("c.json", offset, limit, matching)
        try:
            body = b"".join([chunk async for chunk in reader.chunks(MIB)])
        finally:
            await reader.close()
        end = None if limit is None else offset + limit
        assert body == data[::-1][offset:end]

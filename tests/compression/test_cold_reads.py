"""What a cold read of a compressed bucket (the object's layout not yet known:
after a restart, on another replica) costs in requests to the real store,
counted by the driver's StoreObserver: an object stored as it is what it costs
in any bucket; a compressed one on S3 one or two where the first read serves,
three where it cannot (a range far into an object too long to read whole)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.backends import registry
from gateway.backends.base import Backend, ObjectReader
from gateway.backends.forwarding import ForwardingBackend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, ObjectMeta, WriteOptions
from gateway.layers.compression.backend import CompressingBackend
from gateway.layers.compression.cold import HELD_LIMIT
from gateway.layers.compression.layouts import ENCODING
from gateway.layers.compression.settings import CompressionSettings
from tests import drivers
from tests.compression.stored import json_log, noise
from tests.drivers import get, put
from tests.store_requests import StoreRequests

MIB = 1024 * 1024
JSON = WriteOptions(content_type="application/json")
ZSTD = {"GATEWAY_COMPRESSION": "zstd", "GATEWAY_COMPRESSION_TYPES": "*/*"}


# What each cold read costs, in requests to the store, on Ceph RGW, moto (S3
# as AWS answers it) and GCS. A read past an object's stored size is refused
# (416); Ceph's answer does not name the size, so the driver asks (a HEAD)
# whether the read starts past the end or at it. GCS's driver asks for an
# object's metadata before its bytes, a request of its own, where S3 has both
# in one answer; where S3's first read brings bytes of no use, that is even.
COSTS = {
    # The first read holds it all: the tail and the frames.
    "small whole": {"ceph": 1, "moto": 1, "gcs": 2},
    # The first read, then the object whole.
    "small range": {"ceph": 2, "moto": 2, "gcs": 2},
    # Refused; then the object's end (here all of it), with its metadata.
    "small range past its stored size": {"ceph": 3, "moto": 2, "gcs": 3},
    # The first read, kept open while its tail is read; then its frames.
    "long whole": {"ceph": 2, "moto": 2, "gcs": 3},
    "long range from its start": {"ceph": 2, "moto": 2, "gcs": 3},
    # The first read, of no use; the tail; the frames.
    "long range further in": {"ceph": 3, "moto": 3, "gcs": 3},
    # Refused; then its last MiB: the tail and, here, the frames.
    "long range past its stored size": {"ceph": 3, "moto": 2, "gcs": 3},
    "stored as it is": {"ceph": 1, "moto": 1, "gcs": 2},
    # Refused: nothing read after it.
    "stale condition": {"ceph": 1, "moto": 1, "gcs": 1},
}


@dataclasses.dataclass
class Store:
    """A compressed bucket's store, seen through fresh buckets that know no layout."""

    name: str
    driver: Backend
    settings: CompressionSettings
    requests: StoreRequests
    bucket: CompressingBackend

    def cold(self) -> CompressingBackend:
        """A bucket on the same store and driver remembering nothing (as
        another replica, or after a restart); the request count starts anew."""
        self.requests.sent.clear()
        return CompressingBackend(self.driver, self.settings)

    def sent(self, case: str) -> bool:
        """Whether the requests sent since cold() are those case costs."""
        store = next(kind for kind in ("ceph", "moto", "gcs") if kind in self.name)
        sent = list(zip(self.requests.methods(), self.requests.operations(), strict=True))
        assert len(sent) == COSTS[case][store], (case, sent)
        return True


@pytest.fixture(params=["s3-ceph-zstd", "s3-moto-zstd", "gcs-zstd"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    name = str(request.param)
    # moto's S3 (not a row of the driver table) names an object's size when it
    # refuses a range, as AWS does, and Ceph does not.
    under_test = drivers.DRIVERS[name.replace("moto-zstd", "moto")]
    env = {"STORAGE_BASE_PATH": str(tmp_path), **under_test.start(request), **ZSTD}
    env[under_test.prefix_setting] = drivers.KEY_PREFIX
    bucket_config = config_module.load(env).buckets["default"]
    settings = bucket_config.compression
    assert settings is not None
    requests = StoreRequests()
    driver = registry.build(bucket_config.backend, bucket_config.settings, requests)
    try:
        await driver.probe()
        bucket = CompressingBackend(driver, settings)
        yield Store(name, driver, settings, requests, bucket)
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
    assert await get(store.cold(), "small.json", chunk_size=64 * 1024) == data
    assert store.sent("small whole")
    offset = size // 2  # across frames 0 and 1, within the stored size
    assert await get(store.cold(), "small.json", offset, MIB) == data[offset : offset + MIB]
    assert store.sent("small range")
    offset = 2 * MIB - 100  # across frames 1 and 2, past the stored size
    assert await get(store.cold(), "small.json", offset, 300) == data[offset : offset + 300]
    assert store.sent("small range past its stored size")


async def test_a_longer_compressed_object_costs_two_reads_or_three(store: Store) -> None:
    data = json_log(12 * MIB + 999, seed=3)
    await put(store.bucket, "long.json", data, JSON)
    size = await _stored_size(store, "long.json")
    assert HELD_LIMIT < size < 5 * MIB  # stored in one request (no multipart tags to read)
    assert await get(store.cold(), "long.json", chunk_size=256 * 1024) == data
    assert store.sent("long whole")
    assert await get(store.cold(), "long.json", 0, MIB + 10) == data[: MIB + 10]
    assert store.sent("long range from its start")
    offset = size - 5  # within the stored size, far from its start
    assert await get(store.cold(), "long.json", offset, 10) == data[offset : offset + 10]
    assert store.sent("long range further in")
    offset = 9 * MIB - 5
    assert await get(store.cold(), "long.json", offset, 10) == data[offset : offset + 10]
    assert store.sent("long range past its stored size")


async def test_an_object_stored_as_it_is_costs_what_it_costs_anywhere(store: Store) -> None:
    data = noise(3 * MIB)
    await put(store.bucket, "noise.json", data, JSON)
    assert ENCODING not in (await store.driver.head("noise.json")).metadata
    assert await get(store.cold(), "noise.json", chunk_size=MIB) == data
    assert store.sent("stored as it is")
    assert await get(store.cold(), "noise.json", MIB - 3, 10) == data[MIB - 3 : MIB + 7]
    assert store.sent("stored as it is")
    # The driver's reader itself, with its fast paths.
    reader = await store.cold().open_read("noise.json", 0, None, Conditions())
    own = await store.driver.open_read("noise.json", 0, None, Conditions())
    await reader.close()
    await own.close()
    assert type(reader) is type(own)


async def test_conditions_are_judged_on_the_object_read(store: Store) -> None:
    data = json_log(3 * MIB)
    stale = await put(store.bucket, "c.json", data, JSON)
    current = await put(store.bucket, "c.json", data[::-1], JSON)
    assert stale.etag != current.etag
    for offset, limit in ((0, None), (MIB, 10), (2 * MIB + 5, 10)):
        with pytest.raises(GatewayError) as caught:
            await store.cold().open_read("c.json", offset, limit, Conditions(if_match=stale.etag))
        assert caught.value.reason is Reason.PRECONDITION_FAILED
        assert store.sent("stale condition")
        not_modified = Conditions(if_none_match=current.etag)
        with pytest.raises(GatewayError) as caught:
            await store.cold().open_read("c.json", offset, limit, not_modified)
        assert caught.value.reason is Reason.NOT_MODIFIED
        assert store.sent("stale condition")
        matching = Conditions(if_match=current.etag)
        reader = await store.cold().open_read("c.json", offset, limit, matching)
        try:
            body = b"".join([chunk async for chunk in reader.chunks(MIB)])
        finally:
            await reader.close()
        end = None if limit is None else offset + limit
        assert body == data[::-1][offset:end]
        assert reader.meta.etag == current.etag


class _ReplacedOnce(ForwardingBackend):
    """The driver, but its first read is followed by another writer's Put of
    the same key (landing between a cold read's first request and the next)."""

    def __init__(self, inner: Backend, replace: Callable[[], Awaitable[object]]) -> None:
        super().__init__(inner)
        self._replace: Callable[[], Awaitable[object]] | None = replace

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        reader = await self._inner.open_read(key, offset, limit, conditions)
        replace, self._replace = self._replace, None
        if replace is not None:
            await replace()
        return reader


async def test_an_object_replaced_during_a_cold_read_is_read_as_it_is_now(
    store: Store,
) -> None:
    before = json_log(12 * MIB, seed=11)  # longer than HELD_LIMIT stored
    now = json_log(13 * MIB, seed=12)
    await put(store.bucket, "r.json", before, JSON)
    replaced: list[ObjectMeta] = []

    async def replace() -> None:
        replaced.append(await put(store.bucket, "r.json", now, JSON))

    driver = _ReplacedOnce(store.driver, replace)
    reader = await CompressingBackend(driver, store.settings).open_read(
        "r.json", 0, None, Conditions()
    )
    try:
        body = b"".join([chunk async for chunk in reader.chunks(MIB)])
    finally:
        await reader.close()
    # Never a mix: the layout and the frames of the object there now.
    assert body == now
    assert reader.meta.etag == replaced[0].etag

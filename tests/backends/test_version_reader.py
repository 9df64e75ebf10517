"""The version_reader capability (S3, GCS): a range of an object version the
driver described, in one request to the store, and never another version's
bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.backends import registry
from gateway.backends.base import Backend, VersionReader
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import ObjectMeta
from tests import drivers
from tests.drivers import put
from tests.store_requests import StoreRequests

REMOTE = ["s3-moto", "s3-ceph", "gcs"]


@pytest.fixture(params=REMOTE)
async def observed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Backend, StoreRequests]]:
    under_test = drivers.DRIVERS[request.param]
    env = {"STORAGE_BASE_PATH": str(tmp_path), **under_test.start(request)}
    env[under_test.prefix_setting] = drivers.KEY_PREFIX
    bucket = config_module.load(env).buckets["default"]
    requests = StoreRequests()
    driver = registry.build(bucket.backend, bucket.settings, requests)
    try:
        await driver.probe()
        yield driver, requests
    finally:
        await driver.close()


async def _read(versions: VersionReader, meta: ObjectMeta, offset: int, limit: int | None) -> bytes:
    reader = await versions.open_version(meta, offset, limit)
    try:
        assert reader.meta == meta
        return b"".join([chunk async for chunk in reader.chunks(1000)])
    finally:
        await reader.close()


async def test_a_range_of_a_described_version_in_one_request(
    observed: tuple[Backend, StoreRequests],
) -> None:
    driver, requests = observed
    versions = driver.capabilities.version_reader
    assert versions is not None
    data = bytes(range(256)) * 40
    await put(driver, "v", data)
    meta = await driver.head("v")
    for offset, limit in ((0, None), (5, 100), (-10, None), (len(data) - 1, 50)):
        requests.sent.clear()
        end = None if limit is None else offset + limit
        assert await _read(versions, meta, offset, limit) == data[offset:end]
        assert requests.methods() == ["GET"]
    requests.sent.clear()
    assert await _read(versions, meta, len(data), None) == b""
    assert requests.methods() == []  # nothing to read: nothing asked


async def test_a_replaced_version_is_never_read(observed: tuple[Backend, StoreRequests]) -> None:
    driver, _ = observed
    versions = driver.capabilities.version_reader
    assert versions is not None
    await put(driver, "v", b"first version")
    meta = await driver.head("v")
    await put(driver, "v", b"second version")
    with pytest.raises(GatewayError) as caught:
        await _read(versions, meta, 0, None)
    assert caught.value.reason in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND)
    await driver.delete("v")
    with pytest.raises(GatewayError) as caught:
        await _read(versions, meta, 3, 4)
    assert caught.value.reason in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND)

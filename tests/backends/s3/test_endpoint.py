"""Driver-level tests of the S3 backend's endpoint: a missing bucket, an unreachable
server, and the one client it holds until closed.

Against a real moto server over HTTP; the behaviour all drivers share is in
tests/backends/test_backend_conformance.py. moto does not verify signatures, so wrong
credentials are not tested here (they are on Ceph RGW)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from gateway.backends.s3.backend import S3Backend
from gateway.domain.errors import GatewayError, Reason
from tests import drivers
from tests.backends.s3.moto_bucket import driver_settings, put
from tests.servers import free_port


async def test_missing_bucket(s3: Any, moto_endpoint: str) -> None:
    driver = S3Backend(driver_settings(moto_endpoint, bucket="no-such-bucket"))
    try:
        await drivers.assert_bucket_missing(driver, "no-such-bucket", put(driver, "k", b"abc"))
    finally:
        await driver.close()


async def test_unreachable_endpoint() -> None:
    driver = S3Backend(driver_settings(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(GatewayError) as caught:
            await driver.probe()
        assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
        assert "testing-secret" not in caught.value.message
    finally:
        await driver.close()


async def test_one_client_and_close(backend: S3Backend) -> None:
    await put(backend, "k", b"abc")
    with contextlib.suppress(GatewayError):
        await backend.head("nope")
    await backend.close()
    with pytest.raises(GatewayError) as caught:
        await backend.head("k")
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE

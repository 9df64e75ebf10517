"""Driver-level tests of the GCS backend's endpoint: a missing bucket, an unreachable
server, calls that block off the event loop, and closing.

Against a real fake-gcs-server over HTTP. The emulator checks no credentials and no
signatures, and ignores some preconditions (tests/backends/test_gcs_emulator_gaps.py);
these tests stay on what it gets right."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from gateway.backends.gcs.backend import GcsBackend
from gateway.backends.gcs.settings import GcsSettings
from gateway.domain.errors import GatewayError, Reason
from tests import drivers
from tests.backends.gcs.emulator_bucket import driver_settings, put
from tests.fake_gcs_server import FakeGcsServer
from tests.servers import free_port


async def test_missing_bucket(fake_gcs: FakeGcsServer) -> None:
    driver = GcsBackend(driver_settings(fake_gcs, "no-such-bucket"))
    try:
        await drivers.assert_bucket_missing(driver, "no-such-bucket")
    finally:
        await driver.close()


async def test_unreachable_endpoint_is_unavailable(bucket: str, gcs_key_file: Path) -> None:
    settings = GcsSettings(
        bucket=bucket,
        emulator_host=f"127.0.0.1:{free_port()}",
        credentials_path=str(gcs_key_file),
        retry_deadline=1.0,
    )
    driver = GcsBackend(settings)
    try:
        for call in (driver.probe(), driver.head("k"), put(driver, "k", b"x")):
            with pytest.raises(GatewayError) as caught:
                await call
            assert caught.value.reason is Reason.BACKEND_UNAVAILABLE
            assert "PRIVATE KEY" not in caught.value.message
    finally:
        await driver.close()


async def test_a_blocked_call_does_not_stall_the_loop(backend: GcsBackend) -> None:
    """Library calls run in the pool: while one is stuck, the loop goes on."""
    await put(backend, "k", b"abc")
    ctx = await backend._context()
    release = threading.Event()
    stuck = asyncio.ensure_future(ctx.run(release.wait, 30))
    assert await backend.head("k")  # served while a pool thread is blocked
    assert not stuck.done()
    release.set()
    assert await stuck is True


async def test_close(backend: GcsBackend) -> None:
    await put(backend, "k", b"abc")
    await backend.close()
    with pytest.raises(GatewayError) as caught:
        await backend.head("k")
    assert caught.value.reason is Reason.BACKEND_UNAVAILABLE

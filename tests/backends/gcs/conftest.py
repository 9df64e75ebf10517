"""A GCS backend on a fresh bucket of the session's fake-gcs-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.backends.gcs.backend import GcsBackend
from tests.backends.gcs.emulator_bucket import driver_settings
from tests.fake_gcs_server import FakeGcsServer


@pytest.fixture
def bucket(fake_gcs: FakeGcsServer) -> str:
    fake_gcs.reset()
    return fake_gcs.new_bucket()


@pytest.fixture
async def backend(fake_gcs: FakeGcsServer, bucket: str) -> AsyncIterator[GcsBackend]:
    driver = GcsBackend(driver_settings(fake_gcs, bucket))
    yield driver
    await driver.close()

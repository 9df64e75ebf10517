"""The cases svc-infra's tests/unit/storage/test_memory_backend.py and
test_local_backend.py (1.21-1.22) share word for word, written once against
GatewayStorageBackend on a real gateway (memory and local drivers). Each test
names the case it mirrors and runs once per suite that has it, so that each
suite's cases all still report, as in test_memory_backend_cases.py and
test_local_backend_cases.py."""

from __future__ import annotations

import pytest
from svc_infra.storage.base import FileNotFoundError as SvcFileNotFoundError

from storagegw.svc_infra import GatewayStorageBackend

# svc-infra's suites that both hold every case here.
MIRRORED_SUITES = ("test_memory_backend", "test_local_backend")


@pytest.fixture(params=MIRRORED_SUITES)
def mirrored_suite(request: pytest.FixtureRequest) -> str:
    suite: str = request.param
    return suite


pytestmark = pytest.mark.usefixtures("mirrored_suite")


async def test_delete(backend: GatewayStorageBackend) -> None:
    """test_delete."""
    await backend.put("test/file.txt", b"data", "text/plain")
    assert await backend.exists("test/file.txt")
    assert await backend.delete("test/file.txt") is True
    assert not await backend.exists("test/file.txt")


async def test_delete_nonexistent(backend: GatewayStorageBackend) -> None:
    """test_delete_nonexistent."""
    assert await backend.delete("nonexistent.txt") is False


async def test_exists(backend: GatewayStorageBackend) -> None:
    """test_exists."""
    assert not await backend.exists("test/file.txt")
    await backend.put("test/file.txt", b"data", "text/plain")
    assert await backend.exists("test/file.txt")


async def test_get_url_nonexistent(backend: GatewayStorageBackend) -> None:
    """test_get_url_nonexistent."""
    with pytest.raises(SvcFileNotFoundError):
        await backend.get_url("nonexistent.txt")


async def test_list_keys_empty(backend: GatewayStorageBackend) -> None:
    """test_list_keys_empty."""
    assert await backend.list_keys() == []


async def test_list_keys_with_limit(backend: GatewayStorageBackend) -> None:
    """test_list_keys_with_limit."""
    for i in range(10):
        await backend.put(f"file{i}.txt", b"data", "text/plain")
    assert len(await backend.list_keys(limit=5)) == 5


async def test_get_metadata(backend: GatewayStorageBackend) -> None:
    """test_get_metadata."""
    await backend.put(
        key="test/file.txt",
        data=b"test data",
        content_type="text/plain",
        metadata={"custom": "value"},
    )
    metadata = await backend.get_metadata("test/file.txt")
    assert metadata["size"] == 9
    assert metadata["content_type"] == "text/plain"
    assert metadata["custom"] == "value"
    assert "created_at" in metadata


async def test_get_metadata_nonexistent(backend: GatewayStorageBackend) -> None:
    """test_get_metadata_nonexistent."""
    with pytest.raises(SvcFileNotFoundError):
        await backend.get_metadata("nonexistent.txt")


async def test_binary_data(backend: GatewayStorageBackend) -> None:
    """test_binary_data."""
    binary_data = bytes(range(256))
    await backend.put("binary.bin", binary_data, "application/octet-stream")
    assert await backend.get("binary.bin") == binary_data

"""The cases svc-infra's tests/unit/storage/test_memory_backend.py and
test_local_backend.py (1.21-1.22) share, written once against
GatewayStorageBackend on a real gateway (memory and local drivers). Most are
the same word for word; where the two suites take the same steps but one
asserts more, the test here asserts what both do, and where they store other
values (test_put_with_metadata), each suite's values are in a table. Each test
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

# test_put_with_metadata's content type and metadata, suite by suite.
PUT_WITH_METADATA = {
    "test_memory_backend": ("text/plain", {"user_id": "user_123", "tenant_id": "tenant_456"}),
    "test_local_backend": ("application/json", {"user_id": "user_123", "version": "1.0"}),
}


async def test_put_with_metadata(backend: GatewayStorageBackend, mirrored_suite: str) -> None:
    """test_put_with_metadata: theirs for the local backend reads
    LocalBackend's `.meta.json` sidecar; here the same fields come from
    get_metadata."""
    content_type, custom = PUT_WITH_METADATA[mirrored_suite]
    await backend.put(
        key="test/file.txt", data=b"test data", content_type=content_type, metadata=custom
    )
    metadata = await backend.get_metadata("test/file.txt")
    for name, value in custom.items():
        assert metadata[name] == value
    assert metadata["size"] == 9
    assert metadata["content_type"] == content_type
    assert "created_at" in metadata


async def test_get_nonexistent_file(backend: GatewayStorageBackend) -> None:
    """test_get_nonexistent_file (the message as the memory suite's checks it)."""
    with pytest.raises(SvcFileNotFoundError) as raised:
        await backend.get("nonexistent.txt")
    assert "not found" in str(raised.value).lower()


async def test_list_keys(backend: GatewayStorageBackend) -> None:
    """test_list_keys."""
    await backend.put("file1.txt", b"data1", "text/plain")
    await backend.put("file2.txt", b"data2", "text/plain")
    await backend.put("dir/file3.txt", b"data3", "text/plain")
    keys = await backend.list_keys()
    assert sorted(keys) == ["dir/file3.txt", "file1.txt", "file2.txt"]


async def test_list_keys_with_prefix(backend: GatewayStorageBackend) -> None:
    """test_list_keys_with_prefix: the keys under the prefix, and only those
    (the local suite checks each starts with it, the memory suite names them)."""
    await backend.put("avatars/user1.jpg", b"img1", "image/jpeg")
    await backend.put("avatars/user2.jpg", b"img2", "image/jpeg")
    await backend.put("documents/doc1.pdf", b"pdf1", "application/pdf")
    keys = await backend.list_keys(prefix="avatars/")
    assert len(keys) == 2
    assert all(k.startswith("avatars/") for k in keys)
    assert sorted(keys) == ["avatars/user1.jpg", "avatars/user2.jpg"]


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

"""The forwarding bases of the driver wrappers (backends/forwarding.py, and
ForwardingWriter / ForwardingUploadWriter in backends/base.py): a wrapper
that overrides nothing behaves as the driver it wraps, call for call."""

from __future__ import annotations

import pytest

from gateway.backends.base import Backend, ForwardingUploadWriter, ForwardingWriter, ObjectWriter
from gateway.backends.forwarding import ForwardingBackend, ForwardingReader, ForwardingUploads
from gateway.backends.memory.backend import MemoryBackend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, CopyRequest, ListQuery, WriteOptions
from tests.drivers import get, put, sums


class _Wrapper(ForwardingBackend):
    """Forwards everything; its writers and readers are forwarding ones too."""

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ForwardingReader:
        return ForwardingReader(await super().open_read(key, offset, limit, conditions))

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return ForwardingWriter(await super().open_write(key, options))


async def test_a_forwarding_backend_is_the_driver_it_wraps() -> None:
    driver = MemoryBackend()
    backend: Backend = _Wrapper(driver)
    assert backend.kind == "memory"
    assert backend.capabilities is driver.capabilities
    await backend.probe()

    meta = await put(backend, "dir/a", b"hello", WriteOptions(content_type="text/plain"))
    assert await backend.head("dir/a") == meta == await driver.head("dir/a")
    assert await get(backend, "dir/a", offset=1, limit=3) == b"ell"
    copied = await backend.copy(CopyRequest("dir/a", "dir/b"))
    assert copied.key == "dir/b"
    assert await get(driver, "dir/b") == b"hello"
    page = await backend.list(ListQuery(page_size=10, prefix="dir/"))
    assert [entry.key for entry in page.objects] == ["dir/a", "dir/b"]
    assert await backend.delete("dir/a") is True
    assert await backend.delete("dir/a") is False
    await backend.close()


async def test_a_forwarding_reader_serves_the_drivers_range() -> None:
    driver = MemoryBackend()
    data = bytes(range(200))
    meta = await put(driver, "k", data)
    reader = ForwardingReader(await driver.open_read("k", 10, 100, Conditions()))
    try:
        assert (reader.meta, reader.start, reader.end) == (meta, 10, 110)
        assert reader.held() is None
        encoded = [item async for item in reader.encoded(64, lambda chunk: chunk[::-1])]
        assert [size for _, size in encoded] == [64, 36]
        assert b"".join(chunk[::-1] for chunk, _ in encoded) == data[10:110]
    finally:
        await reader.close()


async def test_a_forwarding_writer_aborts_as_the_driver_does() -> None:
    driver = MemoryBackend()
    writer = ForwardingWriter(await driver.open_write("k", WriteOptions()))
    await writer.write(b"never stored")
    await writer.abort()
    assert (await driver.list(ListQuery(page_size=10))).objects == []


async def test_forwarded_resumable_uploads_commit_as_the_drivers() -> None:
    driver = MemoryBackend()
    assert driver.capabilities.uploads is not None
    uploads = ForwardingUploads(driver.capabilities.uploads)
    handle = await uploads.start_upload("up", WriteOptions(), b"state 0")
    status = await uploads.query_upload("up", handle)
    assert (status.persisted_size, status.state, status.complete) == (0, b"state 0", None)
    status, inner = await uploads.resume_upload("up", handle)
    assert inner is not None
    writer = ForwardingUploadWriter(inner)
    data = b"x" * 10
    await writer.write(data)
    assert writer.checkpoint_bytes == inner.checkpoint_bytes
    meta = await writer.commit(sums(data))
    assert await get(driver, "up") == data
    assert (await uploads.query_upload("up", handle)).complete == meta
    second = await uploads.start_upload("other", WriteOptions(), b"")
    assert await uploads.abort_upload("other", second) is True
    assert await uploads.abort_upload("other", second) is False


async def test_a_forwarding_backend_passes_the_drivers_errors_on() -> None:
    backend = ForwardingBackend(MemoryBackend())
    with pytest.raises(GatewayError) as caught:
        await backend.head("missing")
    assert caught.value.reason is Reason.OBJECT_NOT_FOUND

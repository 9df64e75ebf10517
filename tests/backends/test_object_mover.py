"""Promotion of a pending object (gateway.core.scan_steps.promote) on every
driver: the driver's move where it has one (capabilities.mover: local's
rename, memory's entry), its own copy and a delete elsewhere (S3, GCS:
server-side). Either way the object keeps its bytes, content type, metadata
and checksums, the destination's conditions hold, and the source is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.backends.base import Backend
from gateway.core.scan_steps import Relabel, promote
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Conditions, WriteOptions
from tests import drivers
from tests.drivers import NAMES

MOVES_IN_PLACE = {"memory", "local"}


@pytest.fixture(params=NAMES)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with drivers.probed_backend(request, request.param, tmp_path) as driver:
        yield driver


async def _missing(backend: Backend, key: str) -> bool:
    with pytest.raises(GatewayError) as caught:
        await backend.head(key)
    return caught.value.reason is Reason.OBJECT_NOT_FOUND


async def test_a_move_is_offered_by_the_drivers_that_rename(
    request: pytest.FixtureRequest, backend: Backend
) -> None:
    name = request.node.callspec.params["backend"]
    assert (backend.capabilities.mover is not None) == (name in MOVES_IN_PLACE)


async def test_promotion_keeps_the_object_and_removes_the_source(backend: Backend) -> None:
    data = b"promoted bytes" * 1000
    options = WriteOptions(content_type="text/plain", metadata={"scan": "clean", "a": "b"})
    stored = await drivers.put(backend, "pending/one", data, options)
    meta = await promote(backend, "pending/one", "final/one", Conditions())
    assert meta.key == "final/one"
    assert (meta.size, meta.crc32c, meta.content_type) == (len(data), stored.crc32c, "text/plain")
    assert dict(meta.metadata) == {"scan": "clean", "a": "b"}
    assert await drivers.get(backend, "final/one") == data
    assert dict((await backend.head("final/one")).metadata) == {"scan": "clean", "a": "b"}
    assert await _missing(backend, "pending/one")


async def test_promotion_honours_the_destinations_conditions(
    request: pytest.FixtureRequest, backend: Backend
) -> None:
    if request.node.callspec.params["backend"] == "gcs":
        pytest.skip("fake-gcs-server ignores preconditions on rewrites (test_gcs_emulator_gaps)")
    await drivers.put(backend, "final/taken", b"first")
    await drivers.put(backend, "pending/two", b"second")
    with pytest.raises(GatewayError) as caught:
        await promote(backend, "pending/two", "final/taken", Conditions(if_none_match="*"))
    assert caught.value.reason is Reason.PRECONDITION_FAILED
    assert await drivers.get(backend, "final/taken") == b"first"
    # Nothing changed: the caller removes the pending object.
    assert await drivers.get(backend, "pending/two") == b"second"
    current = await backend.head("final/taken")
    generation = Conditions(if_generation_match=current.generation)
    await promote(backend, "pending/two", "final/taken", generation)
    assert await drivers.get(backend, "final/taken") == b"second"


async def test_a_relabelled_promotion_replaces_the_metadata(backend: Backend) -> None:
    options = WriteOptions(metadata={"scan": "clean"})
    await drivers.put(backend, "pending/three", b"bytes", options)
    relabel = Relabel("application/x-test", {"scan": "skipped"})
    meta = await promote(backend, "pending/three", "final/three", Conditions(), relabel)
    assert (dict(meta.metadata), meta.content_type) == ({"scan": "skipped"}, "application/x-test")
    assert (await backend.head("final/three")).metadata["scan"] == "skipped"
    assert await _missing(backend, "pending/three")


async def test_moving_nothing_is_not_found(backend: Backend) -> None:
    mover = backend.capabilities.mover
    if mover is None:
        pytest.skip("copies and deletes instead (shown above)")
    with pytest.raises(GatewayError) as caught:
        await mover.move("pending/none", "final/none")
    assert caught.value.reason is Reason.OBJECT_NOT_FOUND
    assert await _missing(backend, "final/none")

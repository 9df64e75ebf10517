"""The gateway's lifecycle task on local and memory buckets: objects under
an expiry rule's prefix older than its age are deleted, nothing else.
Objects are made "old" by running the task with a later `now`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.buckets import Buckets
from gateway.core.lifecycle_sweep import sweep_expiry
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.lifecycle import DAY
from gateway.domain.objects import NO_CONDITIONS, ListPage, ListQuery, WriteOptions
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import list_all, put

RULES = (
    '[[buckets.{name}.lifecycle]]\nprefix = "tmp/"\nexpire_after = 7\n'
    '[[buckets.{name}.lifecycle]]\nprefix = "logs/"\nexpire_after = 30\nnative = false\n'
)


@pytest.fixture(params=["local", "memory"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    config = tmp_path / "buckets.toml"
    config.write_text(f'[buckets.data]\nbackend = "{request.param}"\n' + RULES.format(name="data"))
    with run_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path) as gateway:
        yield gateway


def _keys(running: RunningGateway) -> list[str]:
    keys, _ = running.run(list_all(running.backend("data")))
    return sorted(keys)


def _store(running: RunningGateway, *keys: str) -> None:
    for key in keys:
        running.run(put(running.backend("data"), key, b"bytes of " + key.encode()))


def test_old_objects_under_the_prefix_expire(running: RunningGateway) -> None:
    _store(running, "tmp/a", "tmp/b/c", "tmpfile", "keep/tmp/x", "logs/1")
    later = time.time() + 8 * DAY
    counts = running.run(running.gateway.expire_once(now=later))
    assert counts["data"].expired == 2
    # logs/ expires after 30 days, the others are under no rule.
    assert _keys(running) == ["keep/tmp/x", "logs/1", "tmpfile"]
    running.run(running.gateway.expire_once(now=time.time() + 31 * DAY))
    assert _keys(running) == ["keep/tmp/x", "tmpfile"]


def test_a_dry_run_counts_what_would_expire_and_deletes_nothing(running: RunningGateway) -> None:
    _store(running, "tmp/a", "tmp/b/c", "keep/tmp/x")
    gateway = running.gateway
    later = time.time() + 8 * DAY
    dry = running.run(sweep_expiry(gateway.buckets.unguarded(), gateway.lifecycles, later, True))
    sizes = len(b"bytes of tmp/a") + len(b"bytes of tmp/b/c")
    assert (dry["data"].expired, dry["data"].bytes) == (2, sizes)
    assert _keys(running) == ["keep/tmp/x", "tmp/a", "tmp/b/c"]
    counts = running.run(gateway.expire_once(now=later))
    assert (counts["data"].expired, counts["data"].bytes) == (
        dry["data"].expired,
        dry["data"].bytes,
    )
    assert _keys(running) == ["keep/tmp/x"]


def test_younger_objects_stay(running: RunningGateway) -> None:
    _store(running, "tmp/a")
    counts = running.run(running.gateway.expire_once(now=time.time() + 6 * DAY))
    assert counts["data"].expired == 0
    assert _keys(running) == ["tmp/a"]


def test_the_gateways_reserved_prefixes_are_never_expired(tmp_path: Path) -> None:
    """A whole-bucket rule leaves the gateway's own keys: its upload records
    (resumable uploads under .storagegw/) and .cas/."""
    config = tmp_path / "buckets.toml"
    config.write_text(
        '[buckets.data]\nbackend = "local"\n[[buckets.data.lifecycle]]\nexpire_after = 1\n'
    )
    with run_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path) as running:
        backend = running.backend("data")
        _store(running, "a", ".cas/ab/cd")
        uploads = backend.capabilities.uploads
        handle = running.run(uploads.start_upload("big", WriteOptions(), b"state"))
        running.run(running.gateway.expire_once(now=time.time() + 2 * DAY))
        assert _keys(running) == [".cas/ab/cd"]
        status = running.run(uploads.query_upload("big", handle))
        assert not status.complete


def test_a_scanning_buckets_staging_prefix_is_never_expired(tmp_path: Path) -> None:
    """Objects awaiting their checks stay (the pending sweep is theirs)."""
    config = tmp_path / "buckets.toml"
    config.write_text(
        '[buckets.data]\nbackend = "memory"\n'
        '[buckets.data.scan]\nclamd = "tcp://127.0.0.1:9"\nstaging_prefix = "waiting/"\n'
        "[[buckets.data.lifecycle]]\nexpire_after = 1\n"
    )
    with run_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path) as running:
        _store(running, "a", "waiting/x")
        running.run(running.gateway.expire_once(now=time.time() + 2 * DAY))
        assert _keys(running) == ["waiting/x"]


class RewritingAfterListing:
    """A bucket's driver whose listings are followed, before the caller sees
    them, by a new write of one listed key: another client's write landing
    between the task's listing and its delete."""

    def __init__(self, backend: Any, key: str) -> None:
        self._backend = backend
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def list(self, query: ListQuery) -> ListPage:
        page: ListPage = await self._backend.list(query)
        if any(meta.key == self._key for meta in page.objects):
            await put(self._backend, self._key, b"written again")
        return page


def test_an_object_written_again_after_the_listing_survives(running: RunningGateway) -> None:
    _store(running, "tmp/a", "tmp/b")
    gateway = running.gateway
    rewriting = RewritingAfterListing(running.backend("data"), "tmp/b")
    buckets = Buckets({"data": rewriting}, "data")  # type: ignore[dict-item]
    counts = running.run(sweep_expiry(buckets, gateway.lifecycles, time.time() + 8 * DAY))
    assert (counts["data"].expired, counts["data"].raced) == (1, 1)
    assert _keys(running) == ["tmp/b"]
    reader = running.run(running.backend("data").open_read("tmp/b", 0, None, NO_CONDITIONS))
    assert reader.meta.size == len(b"written again")
    running.run(reader.close())


def test_a_missing_bucket_prefix_is_no_error(running: RunningGateway) -> None:
    with pytest.raises(GatewayError) as raised:
        running.run(running.backend("data").head("tmp/none"))
    assert raised.value.reason is Reason.OBJECT_NOT_FOUND
    counts = running.run(running.gateway.expire_once(now=time.time() + 365 * DAY))
    assert counts["data"].expired == 0

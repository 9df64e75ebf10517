"""The purge queue of a bucket: bounded (a full queue drops and counts),
batched up to what the CDN takes at once, each key once a batch, and never
stopped by a purge that fails or raises."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.core.cdn_purge import PurgeQueue
from tests.log_records import captured


class HeldPurger:
    """A CDN API that answers each purge only once the test lets it."""

    def __init__(self, max_batch: int = 100, answers: Sequence[str | None] = ()) -> None:
        self.max_batch = max_batch
        self.batches: asyncio.Queue[list[str]] = asyncio.Queue()
        self.release = asyncio.Event()
        self._answers = list(answers)
        self.closed = False

    async def purge(self, keys: Sequence[str]) -> str | None:
        await self.batches.put(list(keys))
        await self.release.wait()
        answer = self._answers.pop(0) if self._answers else None
        if answer == "raise":
            raise RuntimeError("secret-looking detail")
        return answer

    async def close(self) -> None:
        self.closed = True


async def test_a_full_queue_drops_and_counts() -> None:
    purger = HeldPurger()
    reported: list[tuple[str, int]] = []
    queue = PurgeQueue("media", purger, size=2, report=lambda o, n: reported.append((o, n)))
    for key in ("a", "b", "c"):  # no await between: the task has not taken any yet
        queue.note(key)
    assert queue.counts.dropped == 1
    purger.release.set()
    assert await purger.batches.get() == ["a", "b"]
    queue.note("d")
    assert await purger.batches.get() == ["d"]
    await queue.close()
    assert purger.closed
    assert ("dropped", 1) in reported
    assert queue.counts.sent >= 2


async def test_batches_hold_each_key_once_up_to_the_apis_limit() -> None:
    purger = HeldPurger(max_batch=2)
    queue = PurgeQueue("media", purger)
    for key in ("a", "a", "b", "c"):
        queue.note(key)
    purger.release.set()
    assert await purger.batches.get() == ["a"]  # ["a", "a"]: the limit, once each
    assert await purger.batches.get() == ["b", "c"]
    await queue.close()


async def test_failures_are_logged_without_detail_and_purging_goes_on() -> None:
    purger = HeldPurger(answers=["CloudFront answered HTTP 403 (AccessDenied)", "raise"])
    queue = PurgeQueue("media", purger)
    with captured("storagegw") as records:
        queue.note("a")
        purger.release.set()
        assert await purger.batches.get() == ["a"]
        queue.note("b")
        assert await purger.batches.get() == ["b"]
        queue.note("c")
        assert await purger.batches.get() == ["c"]
        await queue.close()
    messages = [record.getMessage() for record in records.records]
    assert (
        "CDN purge of 1 key(s) of bucket media failed: CloudFront answered HTTP 403 (AccessDenied)"
        in messages
    )
    assert "CDN purge of 1 key(s) of bucket media failed: unexpected RuntimeError" in messages
    assert not any("secret-looking" in message for message in messages)
    assert queue.counts.failed == 2

"""DeleteObjects: up to MAX_BATCH_KEYS deletes of one bucket in one call.

Each key goes through the one door (Buckets.open with Action.DELETE) exactly
as a Delete of it alone would: validated, noted for the call's log, judged by
every guard. A key refused there or by its driver gets its own error in the
results, and the rest go ahead; only what concerns every key (their number,
the bucket) fails the call, before anything is deleted. Every key is opened
before the first delete starts, so the guards see them in request order; the
deletes then run at most DELETE_CONCURRENCY at a time, so that a batch neither
floods the storage nor waits on one key after another.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from gateway.core import calllog
from gateway.core.buckets import Action, Buckets, Target
from gateway.domain.errors import ErrorTemplate, GatewayError, Reason, invalid_argument
from gateway.domain.keys import MAX_KEY_BYTES

MAX_BATCH_KEYS = 1000
# What the keys may add up to: as many keys of the longest valid length. The
# results repeat each key, so this keeps the response within the message
# limit even when some keys are too long to be valid (answered INVALID_KEY).
MAX_BATCH_KEY_BYTES = MAX_BATCH_KEYS * MAX_KEY_BYTES
# Deletes in flight at once for one call (S3 and GCS answer each in a round trip).
DELETE_CONCURRENCY = 16
# Errors about the bucket: the same for every key, so the call's own.
_CALL_REASONS = frozenset({Reason.BUCKET_NOT_FOUND, Reason.INVALID_BUCKET})

_errors = logging.getLogger("storagegw")

too_many_keys = ErrorTemplate(
    Reason.TOO_MANY_KEYS,
    "DeleteObjects takes at most {limit} keys, got {count}; split them into several "
    "calls (nothing was deleted)",
)
_INTERNAL = GatewayError(Reason.INTERNAL, "internal error; see the gateway's log")


@dataclass(frozen=True, slots=True)
class KeyDeletion:
    """One key's outcome: whether its object existed (and is now gone), or
    why it failed (existed is then False, whatever the storage holds)."""

    key: str
    existed: bool = False
    error: GatewayError | None = None


@dataclass(frozen=True, slots=True)
class BatchDeletion:
    """The outcomes, one per requested key in request order, and the bucket
    by its resolved name ("" when no key passed the door)."""

    bucket: str
    results: list[KeyDeletion]


async def delete_objects(buckets: Buckets, bucket: str, keys: Sequence[str]) -> BatchDeletion:
    """Delete each key of bucket; a key given twice is deleted once."""
    if not keys:
        raise invalid_argument("DeleteObjects needs at least one key", field="keys")
    if len(keys) > MAX_BATCH_KEYS:
        raise too_many_keys(limit=MAX_BATCH_KEYS, count=len(keys))
    total = sum(len(key.encode("utf-8", "surrogatepass")) for key in keys)
    if total > MAX_BATCH_KEY_BYTES:
        raise invalid_argument(
            f"the keys add up to {total} bytes, over the {MAX_BATCH_KEY_BYTES} of "
            f"{MAX_BATCH_KEYS} keys of the longest length; nothing was deleted",
            field="keys",
        )
    outcomes: dict[str, KeyDeletion] = {}
    targets: list[Target] = []
    for key in dict.fromkeys(keys):
        try:
            targets.append(buckets.open(bucket, key, Action.DELETE))
        except GatewayError as error:
            if error.reason in _CALL_REASONS:
                raise
            outcomes[key] = KeyDeletion(key, error=error)

    async def delete(target: Target) -> None:
        outcomes[target.key] = await _delete_one(target)

    await run_bounded([functools.partial(delete, t) for t in targets], DELETE_CONCURRENCY)
    results = [outcomes[key] for key in keys]
    entry = calllog.current()
    # The call names many keys: its log line none, its audit one line per key.
    entry.key = ""
    entry.batch = [(r.key, "" if r.error is None else r.error.reason.value) for r in results]
    return BatchDeletion(targets[0].bucket if targets else "", results)


async def _delete_one(target: Target) -> KeyDeletion:
    try:
        existed = await target.backend.delete(target.key)
    except GatewayError as error:
        if error.reason is Reason.INTERNAL:
            # As the interceptor does for a call: a driver's INTERNAL message may
            # name server paths, so it goes to the log and the caller gets none.
            _errors.error("internal error deleting %r", target.key, exc_info=error)
            return KeyDeletion(target.key, error=_INTERNAL)
        return KeyDeletion(target.key, error=error)
    except Exception:
        _errors.exception("unexpected error deleting %r", target.key)
        return KeyDeletion(target.key, error=_INTERNAL)
    return KeyDeletion(target.key, existed=existed)


async def run_bounded(jobs: Sequence[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run every job, at most limit at a time: limit workers take the jobs
    in order from one iterator (no task per job)."""
    pending: Iterator[Callable[[], Awaitable[None]]] = iter(jobs)

    async def worker() -> None:
        for job in pending:
            await job()

    async with asyncio.TaskGroup() as group:
        for _ in range(min(limit, len(jobs))):
            group.create_task(worker())

"""A move on the local driver holds the file locks of both its keys. The
locks are stripes chosen by a hash of the key, so two keys may share one,
and two moves may want the same two stripes: each stripe is taken once and
all in one order, or a move would wait forever (for itself, or for the other
move). A dedup bucket promotes every new content by a move, so it meets both
cases within a few thousand writes."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

from gateway.backends.local.backend import LocalBackend
from gateway.backends.local.key_file_locks import KeyFileLocks
from tests.drivers import get, put


def _same_stripe(locks: KeyFileLocks, prefix_a: str, prefix_b: str) -> tuple[str, str]:
    first = f"{prefix_a}0"
    for n in itertools.count(1):
        other = f"{prefix_b}{n}"
        if locks.path(other) == locks.path(first):
            return first, other
    raise AssertionError("unreachable")


async def test_a_move_between_keys_that_share_a_lock_stripe_completes(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    source, destination = _same_stripe(KeyFileLocks(str(tmp_path / "probe")), "tmp/", "final/")
    await put(backend, source, b"moved")
    mover = backend.capabilities.mover
    assert mover is not None
    # Before the stripes were taken once each, this waited forever on its own lock.
    meta = await asyncio.wait_for(mover.move(source, destination), timeout=60)
    assert meta.key == destination
    assert await get(backend, destination) == b"moved"


def test_holders_of_the_same_stripes_in_opposite_key_orders_both_finish(tmp_path: Path) -> None:
    locks = KeyFileLocks(str(tmp_path))
    a = "a/0"
    b = next(f"b/{n}" for n in itertools.count() if locks.path(f"b/{n}") != locks.path(a))
    inside = threading.Barrier(2, timeout=60)
    order: list[str] = []

    def hold(first: str, second: str) -> None:
        with locks.hold_all(first, second):
            order.append(first)
        inside.wait()  # both threads got through their locks

    threads = [
        threading.Thread(target=hold, args=(a, b)),
        threading.Thread(target=hold, args=(b, a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(order) == [a, b]
    assert not any(thread.is_alive() for thread in threads)


def test_one_stripe_named_twice_is_held_once(tmp_path: Path) -> None:
    locks = KeyFileLocks(str(tmp_path))
    first, second = _same_stripe(locks, "x/", "y/")
    done = threading.Event()

    def hold() -> None:
        with locks.hold_all(first, second):
            done.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert done.wait(timeout=60)

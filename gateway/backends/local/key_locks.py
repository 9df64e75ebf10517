"""Per-key asyncio locks of the local driver, and running blocking work in a
thread under such a lock until it is done, cancellation or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


async def run_to_completion(func: Callable[..., T], *args: Any) -> T:
    """func(*args) in a thread; if the caller is cancelled meanwhile, wait for
    the thread to finish before letting the cancellation through, so that a
    lock held around this call covers the work actually done."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
        raise


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyLocks:
    """One asyncio lock per key, held only while someone uses it."""

    def __init__(self) -> None:
        self._locks: dict[str, _KeyLock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

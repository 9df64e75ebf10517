"""Awaiting work to its end whatever happens to the awaiting task."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_to_the_end(work: Awaitable[T]) -> T:
    """work's result, awaited to its end even if the caller is cancelled
    meanwhile; the cancellation is raised once it has ended (what work
    raised, if it failed). Its own task runs it, so that the cancellation
    cannot cut it short: a record half written, a stream's closing left
    halfway."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    result = task.result()
    if cancelled:
        raise asyncio.CancelledError
    return result

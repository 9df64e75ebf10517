"""RemoteWriter's end (the S3 and GCS writers' abort and suspend): it runs
once, to its end even when its caller is cancelled, and whoever ends the
writer again returns only once that first end has finished.

The race this guards (seen with GCS): a Put stream's client cancels while a
chunk request is in flight; the cancelled write suspends the upload in the
background, the stream's clean-up suspends it again and releases the
upload, and an AbortUpload deletes its record; had the second suspend
returned at once, the first one's last record write would land after the
delete and bring the upload back.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.backends.shared.remote_writer import RemoteWriter
from gateway.domain.objects import Checksums, ObjectMeta


class HeldEnd(RemoteWriter):
    """A writer whose end waits for `release`, then records that it ran."""

    def __init__(self, background: set[asyncio.Task[None]]) -> None:
        super().__init__(background)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.ends = 0
        self.fail = False

    async def _commit(self, checksums: Checksums) -> ObjectMeta:
        raise NotImplementedError

    async def _cleanup(self) -> None:
        self.entered.set()
        await self.release.wait()
        self.ends += 1
        if self.fail:
            raise OSError("the store refused the clean-up")

    def _drop_buffer(self) -> None:
        pass


async def _cancelled_first_end(writer: HeldEnd) -> None:
    """An abort whose caller is cancelled while its clean-up runs."""
    first = asyncio.ensure_future(writer.abort())
    await writer.entered.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_second_end_returns_once_the_first_has_finished() -> None:
    background: set[asyncio.Task[None]] = set()
    writer = HeldEnd(background)
    await _cancelled_first_end(writer)
    assert len(background) == 1  # the clean-up goes on, its caller gone

    async def end_again() -> int:
        await writer.abort()
        return writer.ends  # what the first end had done when this one returned

    again = asyncio.ensure_future(end_again())
    writer.release.set()
    assert await again == 1
    assert writer.ends == 1  # ran once
    assert not background


async def test_a_second_end_does_not_raise_the_first_ends_failure() -> None:
    """The failure is the first caller's to report; a later one only waits."""
    writer = HeldEnd(set())
    writer.fail = True
    first = asyncio.ensure_future(writer.abort())
    await writer.entered.wait()
    again = asyncio.ensure_future(writer.abort())
    writer.release.set()
    with pytest.raises(OSError, match="refused the clean-up"):
        await first
    await again
    assert writer.ends == 1

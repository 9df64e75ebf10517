"""Which stream writes an upload through this replica: one at a time.

A second stream on an upload that one is writing is UPLOAD_BUSY, unless the
first is only winding down a broken stream: a retry usually reaches the
replica while that happens (parts in flight, the last record being
written), and waits for it instead of racing it. An AbortUpload ends the
stream writing the upload, waits for it to wind down, then discards it.
"""

from __future__ import annotations

import asyncio

from gateway.domain.errors import upload_busy


class StreamLock(asyncio.Lock):
    """A lock that knows how many calls hold or await it, and whether its
    holder is only winding down a broken stream (worth waiting for) rather
    than still streaming (another stream is then UPLOAD_BUSY).

    An AbortUpload wins over the stream holding it: it sets `aborted` and
    cancels `receiving` (the holder's reading of its messages), so that the
    holder winds down at once instead of when gRPC notices its client left,
    then takes the lock itself."""

    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.winding_down = False
        self.aborted = False
        self.receiving: asyncio.Future[None] | None = None


class StreamLocks:
    """Per upload handle, the lock of the stream writing it through this
    replica; a handle's lock is dropped once no call holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, StreamLock] = {}

    async def for_stream(self, handle: str, key: str) -> StreamLock:
        """The handle's lock, held by the calling stream (UPLOAD_BUSY while
        another stream holds it other than to wind down)."""
        lock = self._locks.setdefault(handle, StreamLock())
        if lock.locked() and not lock.winding_down:
            raise upload_busy(key=key)
        await self._acquire(handle, lock)
        return lock

    async def for_abort(self, handle: str) -> StreamLock | None:
        """The handle's lock, held by the calling abort once the stream
        holding it (told to stop) has wound down; None when no stream of
        this replica writes the upload."""
        lock = self._locks.get(handle)
        if lock is None:
            return None
        lock.aborted = True
        if lock.receiving is not None:
            lock.receiving.cancel()
        await self._acquire(handle, lock)
        return lock

    async def _acquire(self, handle: str, lock: StreamLock) -> None:
        lock.users += 1
        try:
            await lock.acquire()
        except BaseException:
            self.done_with(handle, lock, locked=False)
            raise

    def release_after(
        self, handle: str, lock: StreamLock, winding_down: asyncio.Future[None]
    ) -> None:
        """Hold the lock until winding_down is done, even when the holder's
        call ends (is cancelled) first; other streams may wait for it."""
        lock.winding_down = True
        winding_down.add_done_callback(lambda _: self.done_with(handle, lock))

    def done_with(self, handle: str, lock: StreamLock, locked: bool = True) -> None:
        if locked:
            lock.winding_down = False
            lock.release()
        lock.users -= 1
        if lock.users == 0:
            del self._locks[handle]

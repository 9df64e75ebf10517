"""What the writers of remote stores (S3, GCS) share: one life (writes, then
exactly one commit or abort), and clean-up that runs to its end even when the
caller is cancelled, so no upload is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager

from gateway.domain.errors import GatewayError, Reason, precondition_failed
from gateway.domain.objects import Checksums, ObjectMeta


def tracked(coro: Awaitable[None], tasks: set[asyncio.Task[None]]) -> asyncio.Task[None]:
    """coro as a task that tasks references until it ends, so the backend's
    close() can wait for it."""
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def shielded(coro: Awaitable[None], tasks: set[asyncio.Task[None]]) -> None:
    """Run coro to completion even if the caller is cancelled (see tracked)."""
    await asyncio.shield(tracked(coro, tasks))


@contextlib.contextmanager
def missing_fails_condition(
    errors: AbstractContextManager[object], key: str, condition: str
) -> Iterator[None]:
    """errors (a store's error mapping) for a conditional write: the store
    answering "no such object" means the condition (if_match, a generation)
    failed, not that something is missing."""
    try:
        with errors:
            yield
    except GatewayError as error:
        if condition and error.reason is Reason.OBJECT_NOT_FOUND:
            raise precondition_failed(key=key, condition=condition) from error
        raise


class RemoteWriter(ABC):
    """commit() and abort() around a store's own _commit() and _cleanup()."""

    def __init__(self, background: set[asyncio.Task[None]]) -> None:
        self._background = background
        self._done = False
        self._ending: asyncio.Task[None] | None = None  # _end's finish, once started
        self.size = 0

    def _check_open(self, what: str) -> None:
        if self._done:
            raise GatewayError(Reason.INTERNAL, f"{what} after the writer was committed or aborted")

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        self._check_open("commit")
        try:
            meta = await self._commit(checksums)
        except BaseException:
            await self.abort()
            raise
        self._done = True
        return meta

    async def abort(self) -> None:
        await self._end(self._cleanup)

    async def _end(self, finish: Callable[[], Awaitable[None]]) -> None:
        """End the writer (once) and run finish to its end even if the caller
        is cancelled: abort's clean-up, or a resumable upload's suspend.

        A later call returns once that first finish has ended, not before:
        a write cancelled mid-request suspends the upload in the background
        (its caller gone), and the stream that then suspends it again and
        lets an AbortUpload in must not have the upload's last record
        written after the abort deleted it."""
        if self._ending is not None:
            await asyncio.wait({self._ending})  # its failure is its first caller's
            return
        if self._done:
            return  # committed
        self._done = True
        self._drop_buffer()
        self._ending = tracked(finish(), self._background)
        await asyncio.shield(self._ending)

    @abstractmethod
    async def _commit(self, checksums: Checksums) -> ObjectMeta:
        """Make the object visible (S3: PutObject or CompleteMultipartUpload)."""

    @abstractmethod
    async def _cleanup(self) -> None:
        """Remove whatever the write left in the store (abort the upload)."""

    @abstractmethod
    def _drop_buffer(self) -> None:
        """Free the bytes held for the next request."""

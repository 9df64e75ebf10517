"""Checkpoint bookkeeping for the drivers whose bytes become durable after
the gateway asks for a checkpoint (S3 parts complete out of order, GCS
acknowledges a chunk later): the checkpoints waiting for their bytes, and
record saves that run beside the stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gateway.backends.shared.upload_records import UploadRecord
from gateway.domain.errors import GatewayError

log = logging.getLogger(__name__)


class Checkpoints:
    """The checkpoints asked for whose bytes are not durable yet."""

    def __init__(self) -> None:
        self._pending: dict[int, bytes] = {}  # size -> the gateway's state then

    def add(self, size: int, state: bytes) -> None:
        self._pending[size] = state

    def reached(self, durable: int) -> tuple[int, bytes] | None:
        """The latest checkpoint at or below durable bytes, if any; it and
        the ones before it are no longer pending."""
        ready = [size for size in self._pending if size <= durable]
        if not ready:
            return None
        size = max(ready)
        state = self._pending[size]
        for done in ready:
            del self._pending[done]
        return size, state


class RecordSaver:
    """Record saves one at a time in the background, coalesced to the latest
    (records only grow, so a skipped one is never needed). A failed save is
    logged: the previous record stays, still consistent, only older."""

    def __init__(
        self,
        save: Callable[[UploadRecord], Awaitable[None]],
        background: set[asyncio.Task[None]],
        store: str,
    ) -> None:
        self._save = save
        self._background = background
        self._store = store  # "S3"...: for the log
        self._latest: UploadRecord | None = None
        self._task: asyncio.Task[None] | None = None

    def submit(self, record: UploadRecord) -> None:
        self._latest = record
        if self._task is None:
            task = asyncio.create_task(self._run())
            self._task = task
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _run(self) -> None:
        try:
            while self._latest is not None:
                record, self._latest = self._latest, None
                try:
                    await self._save(record)
                except GatewayError as error:
                    log.warning(
                        "could not record the %s upload of %r at %d bytes: %s",
                        self._store,
                        record.key,
                        record.persisted_size,
                        error.message,
                    )
        finally:
            self._task = None

    async def flush(self) -> None:
        """Wait until the latest record submitted is written (or failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

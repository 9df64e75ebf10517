"""Resumable uploads for the memory backend.

An upload is an open writer kept across streams plus the gateway's record,
all in process memory: like the objects themselves, they do not survive a
restart. Bytes held by unfinished uploads count against the quota.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.backends.base import Resumed
from gateway.domain.errors import upload_busy, upload_not_found
from gateway.domain.objects import Checksums, ObjectMeta, UploadStatus, WriteOptions

if TYPE_CHECKING:
    from gateway.backends.memory.backend import MemoryBackend, _MemoryWriter

# In memory every byte is as durable as it gets at once; the unit only sets
# how often the gateway's record is refreshed.
CHECKPOINT_BYTES = 256 * 1024


@dataclass(slots=True)
class _Upload:
    key: str
    writer: _MemoryWriter
    state: bytes
    persisted: int = 0
    created: float = field(default_factory=time.monotonic)
    complete: ObjectMeta | None = None
    busy: bool = False

    def status(self) -> UploadStatus:
        return UploadStatus(self.persisted, self.state, self.complete)


class _ResumedWriter:
    checkpoint_bytes = CHECKPOINT_BYTES

    def __init__(self, uploads: MemoryUploads, handle: str, upload: _Upload) -> None:
        self._uploads = uploads
        self._handle = handle
        self._upload = upload

    async def write(self, data: bytes) -> None:
        await self._upload.writer.write(data)

    async def checkpoint(self, size: int, state: bytes) -> None:
        self._upload.persisted = size
        self._upload.state = state

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        upload = self._upload
        upload.writer.truncate(checksums.size)  # nothing past what was hashed
        meta = upload.writer.commit_keeping_data(checksums)
        upload.complete = meta
        upload.busy = False
        return meta

    async def suspend(self) -> None:
        upload = self._upload
        if upload.complete is None:
            upload.writer.truncate(upload.persisted)
        upload.busy = False

    async def abort(self) -> None:
        await self._uploads.abort(self._upload.key, self._handle)


class MemoryUploads:
    """The memory backend's ResumableBackend methods."""

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend
        self._uploads: dict[str, _Upload] = {}

    def _get(self, key: str, handle: str) -> _Upload:
        upload = self._uploads.get(handle)
        if upload is None or upload.key != key:
            raise upload_not_found(key)
        return upload

    async def start(self, key: str, options: WriteOptions, state: bytes) -> str:
        writer = self._backend.new_writer(key, options)
        handle = secrets.token_urlsafe(16)
        self._uploads[handle] = _Upload(key, writer, state)
        return handle

    async def query(self, key: str, handle: str) -> UploadStatus:
        return self._get(key, handle).status()

    async def resume(self, key: str, handle: str) -> Resumed:
        upload = self._get(key, handle)
        if upload.complete is not None:
            return upload.status(), None
        if upload.busy:
            raise upload_busy(key)
        upload.busy = True
        return upload.status(), _ResumedWriter(self, handle, upload)

    async def abort(self, key: str, handle: str) -> bool:
        upload = self._uploads.get(handle)
        if upload is None or upload.key != key:
            return False  # gone already
        if upload.complete is not None:
            return False  # finished: it keeps answering with its object
        del self._uploads[handle]
        await upload.writer.abort()
        return True

    async def unfinished(self) -> tuple[int, int]:
        """(unfinished uploads, the bytes they hold)."""
        held = [u.writer.held for u in self._uploads.values() if u.complete is None]
        return len(held), sum(held)

    async def abort_stale(self, older_than_s: float) -> int:
        cutoff = time.monotonic() - older_than_s
        stale = [h for h, u in self._uploads.items() if u.created <= cutoff and not u.busy]
        aborted = 0
        for handle in stale:
            upload = self._uploads.pop(handle)
            await upload.writer.abort()
            aborted += upload.complete is None
        return aborted

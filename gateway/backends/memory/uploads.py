"""Resumable uploads for the memory backend: the memory buffer the shared
engine (shared/resumable) keeps across streams.

An upload is an open writer kept across streams plus its record, all in
process memory: like the objects themselves, they do not survive a restart.
Bytes held by unfinished uploads count against the quota.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from gateway.backends.base import Resumed
from gateway.backends.shared.resumable import Listed
from gateway.backends.shared.upload_records import UploadRecord
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions

# In memory every byte is as durable as it gets at once; the unit only sets
# how often the gateway's record is refreshed.
CHECKPOINT_BYTES = 256 * 1024


class Buffer(Protocol):
    """The memory backend's writer, as an upload keeps it open."""

    @property
    def held(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    def truncate(self, size: int) -> None: ...

    def commit_keeping_data(self, checksums: Checksums) -> ObjectMeta: ...

    async def abort(self) -> None: ...


@dataclass(slots=True)
class _Upload:
    record: UploadRecord
    buffer: Buffer


class _ResumedWriter:
    checkpoint_bytes = CHECKPOINT_BYTES

    def __init__(self, uploads: MemoryUploads, handle: str, upload: _Upload) -> None:
        self._uploads = uploads
        self._handle = handle
        self._upload = upload

    async def write(self, data: bytes) -> None:
        await self._upload.buffer.write(data)

    async def checkpoint(self, size: int, state: bytes) -> None:
        self._upload.record = self._upload.record.advanced(size, state)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        upload = self._upload
        upload.buffer.truncate(checksums.size)  # nothing past what was hashed
        meta = upload.buffer.commit_keeping_data(checksums)
        upload.record = replace(upload.record, complete=meta)
        return meta

    async def suspend(self) -> None:
        upload = self._upload
        if upload.record.complete is None:
            upload.buffer.truncate(upload.record.persisted_size)

    async def abort(self) -> None:
        await self._uploads.discard(self._handle, self._upload.record)


class MemoryUploads:
    """The memory backend's UploadStore, and its unfinished-upload counter."""

    def __init__(self, new_buffer: Callable[[str, WriteOptions], Buffer]) -> None:
        self._new_buffer = new_buffer
        self._uploads: dict[str, _Upload] = {}

    async def create(self, key: str, options: WriteOptions, state: bytes) -> str:
        buffer = self._new_buffer(key, options)
        handle = secrets.token_urlsafe(16)
        self._uploads[handle] = _Upload(UploadRecord(key, options, state), buffer)
        return handle

    async def load(self, key: str, handle: str) -> UploadRecord | None:
        upload = self._uploads.get(handle)
        return None if upload is None else upload.record

    async def live(self, handle: str, record: UploadRecord) -> UploadRecord:
        return record

    async def reopen(self, handle: str, record: UploadRecord) -> Resumed:
        upload = self._uploads[handle]
        return upload.record.status(), _ResumedWriter(self, handle, upload)

    async def discard(self, handle: str, record: UploadRecord) -> bool:
        upload = self._uploads.get(handle)
        if upload is None or upload.record.complete is not None:
            return False
        del self._uploads[handle]
        await upload.buffer.abort()
        return True

    async def listing(self) -> Sequence[Listed]:
        return [Listed(h, u.record, u.record.created_unix) for h, u in self._uploads.items()]

    async def remove(self, entry: Listed) -> bool:
        upload = self._uploads.pop(entry.handle, None)
        if upload is None:
            return False  # aborted meanwhile
        await upload.buffer.abort()
        return upload.record.complete is None

    async def would_remove(self, entry: Listed) -> bool:
        upload = self._uploads.get(entry.handle)
        return upload is not None and upload.record.complete is None

    async def unfinished_uploads(self) -> tuple[int, int]:
        """(unfinished uploads, the bytes they hold)."""
        held = [u.buffer.held for u in self._uploads.values() if u.record.complete is None]
        return len(held), sum(held)

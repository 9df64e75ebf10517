"""The resumable-upload engine every driver shares.

A driver keeps its uploads its own way (an S3 multipart upload, a GCS
session, a local data file, a memory buffer) beside the same record
(upload_records). What is the same everywhere lives here, once:

- the handle names an upload of one key: an unknown handle, or one of
  another key, is UPLOAD_NOT_FOUND (AbortUpload: False);
- a finished upload keeps answering with its object: resuming it gives no
  writer, aborting it is False, and a sweep removes its record uncounted;
- one writer per upload in this process: a second resume is UPLOAD_BUSY
  until the first writer ends (commit, suspend or abort), and the stale
  sweep leaves an upload being written alone. A driver whose uploads are
  shared between processes (local) adds its own cross-process lock;
- the stale sweep: every upload created before the cutoff goes, and counts
  when it was unfinished.

The driver plugs in through UploadStore; the engine is what the gateway gets
as the bucket's `capabilities.uploads` (and, except on S3, `cleaner`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.backends.base import ForwardingUploadWriter, Resumed, UploadWriter
from gateway.backends.shared.upload_records import UploadRecord
from gateway.domain.errors import upload_busy, upload_not_found
from gateway.domain.objects import Checksums, ObjectMeta, UploadStatus, WriteOptions


@dataclass(frozen=True, slots=True)
class Listed:
    """An upload found by the stale sweep. record is None when it could not
    be read; created_unix is then the driver's best guess of its age."""

    handle: str
    record: UploadRecord | None
    created_unix: float

    @property
    def unfinished(self) -> bool:
        return self.record is None or self.record.complete is None


class UploadStore(Protocol):
    """What differs between drivers: where the bytes and the record live."""

    async def create(self, key: str, options: WriteOptions, state: bytes) -> str:
        """Store a new upload of key and its first record; its handle."""

    async def load(self, key: str, handle: str) -> UploadRecord | None:
        """handle's record as stored; None when there is none (key names the
        upload in errors)."""

    async def live(self, handle: str, record: UploadRecord) -> UploadRecord:
        """An unfinished record checked against the storage: complete when a
        commit got through but could not say so, UPLOAD_NOT_FOUND when the
        storage no longer holds the upload."""

    async def reopen(self, handle: str, record: UploadRecord) -> Resumed:
        """A writer continuing the unfinished record at its persisted size
        (no writer when it turns out complete meanwhile)."""

    async def discard(self, handle: str, record: UploadRecord) -> bool:
        """Remove an unfinished upload (bytes and record); whether the
        storage still held it."""

    async def listing(self) -> Sequence[Listed]:
        """Every upload, for the stale sweep."""

    async def remove(self, entry: Listed) -> bool:
        """Remove a stale upload the sweep found (bytes and record); whether
        an unfinished upload went."""

    async def would_remove(self, entry: Listed) -> bool:
        """What remove(entry) would return now, removing nothing: a dry
        run's count."""


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep did: how many unfinished uploads it aborted, the uploads
    it went for (a driver may still find one busy in another process) and
    the ones it kept (young, or being written here)."""

    aborted: int
    removed: list[Listed]
    kept: list[Listed]


class ResumableUploads:
    """ResumableBackend and StaleUploadCleaner over a driver's UploadStore."""

    def __init__(self, store: UploadStore) -> None:
        self._store = store
        self._writing: set[str] = set()  # handles with a writer in this process

    async def _load(self, key: str, handle: str) -> UploadRecord | None:
        record = await self._store.load(key, handle)
        if record is None or record.key != key:
            return None
        return record

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        return await self._store.create(key, options, state)

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        record = await self._load(key, handle)
        if record is None:
            raise upload_not_found(key=key)
        if record.complete is None:
            record = await self._store.live(handle, record)
        return record.status()

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        record = await self._load(key, handle)
        if record is None:
            raise upload_not_found(key=key)
        if record.complete is not None:
            return record.status(), None
        if handle in self._writing:
            raise upload_busy(key=key)
        self._writing.add(handle)
        try:
            status, writer = await self._store.reopen(handle, record)
        except BaseException:
            self._writing.discard(handle)
            raise
        if writer is None:
            self._writing.discard(handle)
            return status, None
        return status, _OneWriter(writer, lambda: self._writing.discard(handle))

    async def abort_upload(self, key: str, handle: str) -> bool:
        record = await self._load(key, handle)
        if record is None or record.complete is not None:
            return False  # gone already, or finished: it keeps answering with its object
        return await self._store.discard(handle, record)

    async def sweep(self, cutoff_unix: float, *, dry_run: bool = False) -> Swept:
        """Remove the uploads created at or before cutoff_unix, but those a
        stream of this process writes. dry_run: remove none; aborted counts
        the unfinished ones that would go."""
        aborted = 0
        removed: list[Listed] = []
        kept: list[Listed] = []
        for entry in await self._store.listing():
            if entry.created_unix > cutoff_unix or entry.handle in self._writing:
                kept.append(entry)
                continue
            remove = self._store.would_remove if dry_run else self._store.remove
            aborted += await remove(entry)
            removed.append(entry)
        return Swept(aborted, removed, kept)

    async def abort_stale_uploads(self, older_than_s: float, *, dry_run: bool = False) -> int:
        return (await self.sweep(time.time() - older_than_s, dry_run=dry_run)).aborted


class _OneWriter(ForwardingUploadWriter):
    """The driver's writer; the upload is free for another once it ends."""

    def __init__(self, writer: UploadWriter, release: Callable[[], None]) -> None:
        super().__init__(writer)
        self._release = release

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        try:
            return await self._writer.commit(checksums)
        finally:
            self._release()

    async def suspend(self) -> None:
        try:
            await self._writer.suspend()
        finally:
            self._release()

    async def abort(self) -> None:
        try:
            await self._writer.abort()
        finally:
            self._release()

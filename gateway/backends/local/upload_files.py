"""The files of one local resumable upload, and the writer of one stream.

See local/uploads.py for the layout. Everything but the writer's async methods
is blocking; callers run it in worker threads.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from gateway.backends.local.format import (
    PREFIX_LEN,
    encode_header,
    fsync_dir,
    header_block,
    pwrite_all,
    storage_errors,
    write_all,
)
from gateway.backends.local.io import Committer
from gateway.backends.shared.upload_records import UploadRecord, decode, encode, meta_doc, meta_from
from gateway.domain.errors import GatewayError, Reason, upload_aborted
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions
from gateway.domain.tasks import wait_to_the_end

# Bytes between checkpoints (an fsync of the data file and of a new record).
# Each fsync waits for the disk, so fewer of them cost less: at 8 MiB a 1 GiB
# upload took 1.45x a plain Put on the 2-core test machine, at 32 MiB 1.06x.
# A crash loses at most this much, sent again on resume.
CHECKPOINT_BYTES = 32 * 1024 * 1024
DATA = "data"
RECORD = "record.json"
# Left by an AbortUpload that found another process's stream holding the
# upload: that stream stops at its next checkpoint (or its commit) and
# removes the upload; nothing else may continue or commit it meanwhile.
ABORTED = "aborted"
_RECORD_TMP = "record.json.tmp"
FILE_MODE = 0o600


def write_record(directory: str, record: UploadRecord) -> None:
    """Replace directory's record, durably (blocking)."""
    tmp = os.path.join(directory, _RECORD_TMP)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        write_all(fd, encode(record))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, RECORD))
    fsync_dir(directory)


def read_record(directory: str) -> UploadRecord | None:
    path = os.path.join(directory, RECORD)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return decode(data, path)


def is_aborted(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, ABORTED))


def mark_aborted(directory: str) -> None:
    """Leave the ABORTED mark, durably (blocking)."""
    fd = os.open(
        os.path.join(directory, ABORTED), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
    )
    os.close(fd)
    fsync_dir(directory)


def lock_dir(directory: str) -> int | None:
    """An fd holding the upload's flock; None when another stream holds it.
    FileNotFoundError when the upload is gone (or being removed)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    try:
        # Still the upload's directory, not one moved away to be removed?
        same = os.path.samestat(os.fstat(fd), os.stat(directory))
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        raise FileNotFoundError(directory)
    return fd


def completed(record: UploadRecord, meta: ObjectMeta) -> UploadRecord:
    driver = {k: v for k, v in record.driver.items() if k != "committing"}
    return replace(record, persisted_size=meta.size, complete=meta, driver=driver)


def committed_view(record: UploadRecord, directory: str) -> UploadRecord:
    """record, complete if a commit installed its data file then died."""
    committing = record.driver.get("committing")
    if record.complete is not None or committing is None:
        return record
    if os.path.exists(os.path.join(directory, DATA)):
        return record
    return completed(record, meta_from(committing))


class UploadWriter:
    """One stream of a local upload; holds its lock until it ends. Also what
    the backend's commit installs (local/io.py's Finishable)."""

    checkpoint_bytes = CHECKPOINT_BYTES

    def __init__(
        self,
        directory: str,
        record: UploadRecord,
        lock: int,
        data_fd: int,
        data_offset: int,
        commit: Committer,
        remove: Callable[[str], None],
    ) -> None:
        self._commit = commit
        self._remove = remove
        self._dir = directory
        self._record = record  # as of the last checkpoint
        self._lock: int | None = lock
        self._data_fd: int | None = data_fd
        self._data_offset = data_offset
        self._size = record.persisted_size
        # The fds are closed only by a thread holding _io, and only once no
        # checkpoint is in flight (they use the data fd without _io).
        self._io = threading.Lock()
        self._checkpoint: asyncio.Future[UploadRecord] | None = None

    @property
    def key(self) -> str:
        return self._record.key

    @property
    def options(self) -> WriteOptions:
        return self._record.options

    @property
    def size(self) -> int:
        return self._size

    def _fd(self) -> int:
        if self._data_fd is None:
            raise GatewayError(Reason.INTERNAL, "local backend: the upload's stream has ended")
        return self._data_fd

    def _write(self, data: bytes, position: int) -> None:
        with self._io:
            pwrite_all(self._fd(), data, self._data_offset + position)

    async def write(self, data: bytes) -> None:
        if not data:
            return
        with storage_errors(self.key):
            await asyncio.to_thread(self._write, data, self._size)
        self._size += len(data)

    def _checkpoint_sync(self, record: UploadRecord) -> UploadRecord:
        if is_aborted(self._dir):
            raise upload_aborted(key=self.key)
        os.fsync(self._fd())  # the bytes first, then the record claiming them
        write_record(self._dir, record)
        return record

    async def _settle(self) -> None:
        """Wait for the checkpoint in flight; raise what it raised."""
        task, self._checkpoint = self._checkpoint, None
        if task is not None:
            with storage_errors(self.key):
                self._record = await wait_to_the_end(task)

    async def checkpoint(self, size: int, state: bytes) -> None:
        await self._settle()
        record = self._record.advanced(size, state)
        self._checkpoint = asyncio.ensure_future(asyncio.to_thread(self._checkpoint_sync, record))

    def finish(self, meta: ObjectMeta) -> str:
        """The data file made the final object file, and the commit noted in
        the record; its path (blocking, under the backend's key lock)."""
        header_len = self._data_offset - PREFIX_LEN
        if is_aborted(self._dir):
            raise upload_aborted(key=self.key)
        with self._io:
            fd = self._fd()
            end = self._data_offset + meta.size
            if os.fstat(fd).st_size != end:
                os.ftruncate(fd, end)  # nothing past what was hashed
            pwrite_all(fd, header_block(encode_header(meta), header_len), 0)
            os.fsync(fd)
        driver = {**self._record.driver, "committing": meta_doc(meta)}
        write_record(self._dir, replace(self._record, driver=driver))
        return os.path.join(self._dir, DATA)

    def release(self) -> None:
        with self._io:
            if self._data_fd is not None:
                os.close(self._data_fd)
                self._data_fd = None

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        await self._settle()
        meta = await self._commit(self, checksums.crc32c, checksums.sha256)
        done = completed(self._record, meta)
        with storage_errors(self.key):
            await wait_to_the_end(
                asyncio.ensure_future(asyncio.to_thread(write_record, self._dir, done))
            )
        await self._close()
        return meta

    def close_sync(self) -> None:
        """Close the data file and release the lock (blocking); an upload
        aborted meanwhile by another process is removed first."""
        with self._io:
            if self._data_fd is not None:
                os.close(self._data_fd)
                self._data_fd = None
            if self._lock is not None:
                if is_aborted(self._dir):
                    with suppress(OSError):
                        self._remove(self._dir)
                os.close(self._lock)
                self._lock = None

    async def _close(self) -> None:
        await wait_to_the_end(asyncio.ensure_future(asyncio.to_thread(self.close_sync)))

    async def suspend(self) -> None:
        try:
            await self._settle()
        finally:
            await self._close()

    def _abort_sync(self) -> None:
        with self._io:
            if self._lock is not None:
                self._remove(self._dir)
        self.close_sync()

    async def abort(self) -> None:
        try:
            with suppress(GatewayError, OSError):
                await self._settle()  # the upload goes anyway
        finally:
            await wait_to_the_end(asyncio.ensure_future(asyncio.to_thread(self._abort_sync)))

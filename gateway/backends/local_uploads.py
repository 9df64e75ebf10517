"""Resumable uploads for the local backend.

Each upload is a directory root/uploads/<handle>/ holding:

    data         the future object file: the placeholder header any write
                 streamed to disk starts with (local_format), then the bytes
                 received; commit installs it as the key, like a normal Put
    record.json  the upload's record (upload_records), replaced atomically:
                 written beside, fsynced, renamed, the directory fsynced

A checkpoint fsyncs the data file, then writes the record claiming its size:
the record never claims bytes that are not durable. It runs in a worker
thread while the stream goes on (one at a time), and commit and suspend wait
for it. A resumed stream truncates the data file to the recorded size: bytes
past the last checkpoint are not trusted.

A stream holds an exclusive flock on the upload's directory until it ends;
a second stream on the same upload gets UPLOAD_BUSY, and the kernel drops the
lock when the process dies. Removing an upload (AbortUpload, cleanup) takes
that lock, renames the directory into root/tmp, then deletes it: a crash
half-way leaves it in root/tmp, which the backend sweeps at start.

Commit writes the object's metadata into the record ("committing") before
installing the data file: if the process dies between installing it and
recording the upload as complete, the data file is gone (or, for a
create-only write, the key holds that generation) and the next query or
resume finds the upload complete.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import TypeVar

from gateway.backends.base import (
    Checksums,
    ObjectMeta,
    Resumed,
    UploadStatus,
    WriteOptions,
)
from gateway.backends.local_format import (
    PREFIX_LEN,
    encode_header,
    fsync_dir,
    header_block,
    make_dirs,
    pwrite_all,
    read_current,
    reserved_header_len,
    storage_errors,
    write_all,
)
from gateway.backends.local_io import Committer
from gateway.backends.upload_records import UploadRecord, decode, encode, meta_doc, meta_from
from gateway.errors import GatewayError, Reason, upload_not_found

# Bytes between checkpoints (an fsync of the data file and of a new record).
CHECKPOINT_BYTES = 8 * 1024 * 1024
DATA = "data"
RECORD = "record.json"
_RECORD_TMP = "record.json.tmp"
# What secrets.token_urlsafe makes: never "/", "." or "..".
_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FILE_MODE = 0o600

T = TypeVar("T")


def upload_busy(key: str) -> GatewayError:
    return GatewayError(
        Reason.UPLOAD_BUSY,
        f"another stream is writing the upload of {key!r}; retry when it ends",
        key=key,
    )


def _write_record(directory: str, record: UploadRecord) -> None:
    """Replace directory's record, durably (blocking)."""
    tmp = os.path.join(directory, _RECORD_TMP)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _FILE_MODE)
    try:
        write_all(fd, encode(record))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, RECORD))
    fsync_dir(directory)


def _read_record(directory: str) -> UploadRecord | None:
    path = os.path.join(directory, RECORD)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return decode(data, path)


def _lock_dir(directory: str) -> int | None:
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


def _completed(record: UploadRecord, meta: ObjectMeta) -> UploadRecord:
    driver = {k: v for k, v in record.driver.items() if k != "committing"}
    return replace(record, persisted_size=meta.size, complete=meta, driver=driver)


def _committed_view(record: UploadRecord, directory: str) -> UploadRecord:
    """record, complete if a commit installed its data file then died."""
    committing = record.driver.get("committing")
    if record.complete is not None or committing is None:
        return record
    if os.path.exists(os.path.join(directory, DATA)):
        return record
    return _completed(record, meta_from(committing))


async def _wait(task: asyncio.Future[T]) -> T:
    """task's result; waits for it to end even if cancelled meanwhile."""
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


class LocalUploads:
    """The local backend's ResumableBackend and StaleUploadCleaner methods."""

    def __init__(
        self,
        root: str,
        tmp: str,
        path_of: Callable[[str], str],
        commit: Committer,
        check_supported: Callable[[WriteOptions], None],
    ) -> None:
        self._dir = os.path.join(root, "uploads")
        self._tmp = tmp
        self._path_of = path_of
        self.commit = commit
        self._check_supported = check_supported

    def _upload_dir(self, key: str, handle: str) -> str:
        if not _HANDLE.fullmatch(handle):
            raise upload_not_found(key)
        return os.path.join(self._dir, handle)

    def _record_of(self, key: str, directory: str) -> UploadRecord:
        record = _read_record(directory)
        if record is None or record.key != key:
            raise upload_not_found(key)
        return record

    def remove(self, directory: str) -> None:
        """Remove an upload's directory, its lock held (blocking)."""
        trash = os.path.join(self._tmp, secrets.token_hex(16) + ".upload")
        os.rename(directory, trash)
        fsync_dir(self._dir)
        shutil.rmtree(trash, ignore_errors=True)

    # Starting.

    async def start(self, key: str, options: WriteOptions, state: bytes) -> str:
        self._check_supported(options)
        self._path_of(key)  # reject keys this filesystem cannot store
        header_len = reserved_header_len(options.content_type, dict(options.metadata))
        record = UploadRecord(key, options, state, driver={"header_len": header_len})
        with storage_errors(key):
            return await asyncio.to_thread(self._start_sync, record, header_len)

    def _start_sync(self, record: UploadRecord, header_len: int) -> str:
        make_dirs(self._dir)
        while True:
            handle = secrets.token_urlsafe(16)
            directory = os.path.join(self._dir, handle)
            try:
                os.mkdir(directory, 0o700)
                break
            except FileExistsError:
                continue
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(os.path.join(directory, DATA), flags, _FILE_MODE)
        try:
            write_all(fd, header_block(b"", header_len))
            os.fsync(fd)
        finally:
            os.close(fd)
        _write_record(directory, record)
        fsync_dir(self._dir)
        return handle

    # Querying and resuming.

    async def query(self, key: str, handle: str) -> UploadStatus:
        directory = self._upload_dir(key, handle)
        record = await asyncio.to_thread(self._record_of, key, directory)
        return (await asyncio.to_thread(_committed_view, record, directory)).status()

    async def resume(self, key: str, handle: str) -> Resumed:
        directory = self._upload_dir(key, handle)
        task = asyncio.ensure_future(asyncio.to_thread(self._resume_sync, key, directory))
        try:
            with storage_errors(key):
                return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_close_unused)
            raise

    def _resume_sync(self, key: str, directory: str) -> Resumed:
        record = _committed_view(self._record_of(key, directory), directory)
        if record.complete is not None:
            return record.status(), None
        try:
            lock = _lock_dir(directory)
        except FileNotFoundError:
            raise upload_not_found(key) from None
        if lock is None:
            raise upload_busy(key)
        data_fd = None
        try:
            record = self._recover(self._record_of(key, directory), directory)
            if record.complete is not None:
                os.close(lock)
                return record.status(), None
            data_fd = os.open(os.path.join(directory, DATA), os.O_RDWR | os.O_CLOEXEC)
            data_offset = PREFIX_LEN + int(record.driver["header_len"])
            end = data_offset + record.persisted_size
            size = os.fstat(data_fd).st_size
            if size < end:
                raise GatewayError(
                    Reason.INTERNAL,
                    f"local backend: the data file of the upload of {key!r} is shorter "
                    f"({size} bytes) than its record says ({end})",
                    key=key,
                )
            if size > end:
                os.ftruncate(data_fd, end)  # past the last checkpoint: not trusted
        except BaseException:
            if data_fd is not None:
                os.close(data_fd)
            os.close(lock)
            raise
        writer = _UploadWriter(self, directory, record, lock, data_fd, data_offset)
        return record.status(), writer

    def _recover(self, record: UploadRecord, directory: str) -> UploadRecord:
        """record, made complete if a commit got as far as installing the
        data file (the lock held; blocking)."""
        done = _committed_view(record, directory)
        committing = record.driver.get("committing")
        if done is record and committing is not None and record.complete is None:
            # A create-only commit links the data file to the key, then
            # unlinks it: did it get that far?
            meta = meta_from(committing)
            current = read_current(self._path_of(record.key), record.key)
            if current is None or current.generation != meta.generation:
                return record
            done = _completed(record, meta)
            os.unlink(os.path.join(directory, DATA))
        if done is not record:
            _write_record(directory, done)
        return done

    # Removing.

    async def abort(self, key: str, handle: str) -> bool:
        if not _HANDLE.fullmatch(handle):
            return False
        with storage_errors(key):
            return await asyncio.to_thread(self._abort_sync, key, os.path.join(self._dir, handle))

    def _abort_sync(self, key: str, directory: str) -> bool:
        record = _read_record(directory)
        if record is None or record.key != key:
            return False
        try:
            lock = _lock_dir(directory)
        except FileNotFoundError:
            return False
        if lock is None:
            raise upload_busy(key)
        try:
            record = _read_record(directory)
            if record is None:
                return False
            existed = _committed_view(record, directory).complete is None
            self.remove(directory)
            return existed
        finally:
            os.close(lock)

    async def abort_stale(self, older_than_s: float) -> int:
        return await asyncio.to_thread(self._abort_stale_sync, time.time() - older_than_s)

    def _abort_stale_sync(self, cutoff: float) -> int:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return 0
        aborted = 0
        for name in names:
            directory = os.path.join(self._dir, name)
            if not _HANDLE.fullmatch(name):
                continue
            try:
                lock = _lock_dir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if lock is None:
                continue  # a stream is writing it
            try:
                try:
                    record = _read_record(directory)
                except GatewayError:
                    record = None  # unreadable: judged by its directory's age
                created = os.stat(directory).st_mtime if record is None else record.created_unix
                if created > cutoff:
                    continue
                unfinished = record is None or _committed_view(record, directory).complete is None
                self.remove(directory)
                aborted += unfinished
            finally:
                os.close(lock)
        return aborted


def _close_unused(task: asyncio.Future[Resumed]) -> None:
    """Release the writer a cancelled resume got."""
    if task.cancelled() or task.exception() is not None:
        return
    writer = task.result()[1]
    if isinstance(writer, _UploadWriter):
        writer.close_sync()


class _UploadWriter:
    """One stream of a local upload; holds its lock until it ends. Also what
    the backend's commit installs (local_io.Finishable)."""

    checkpoint_bytes = CHECKPOINT_BYTES

    def __init__(
        self,
        uploads: LocalUploads,
        directory: str,
        record: UploadRecord,
        lock: int,
        data_fd: int,
        data_offset: int,
    ) -> None:
        self._uploads = uploads
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
        os.fsync(self._fd())  # the bytes first, then the record claiming them
        _write_record(self._dir, record)
        return record

    async def _settle(self) -> None:
        """Wait for the checkpoint in flight; raise what it raised."""
        task, self._checkpoint = self._checkpoint, None
        if task is not None:
            with storage_errors(self.key):
                self._record = await _wait(task)

    async def checkpoint(self, size: int, state: bytes) -> None:
        await self._settle()
        record = self._record.advanced(size, state)
        self._checkpoint = asyncio.ensure_future(asyncio.to_thread(self._checkpoint_sync, record))

    def finish(self, meta: ObjectMeta) -> str:
        """The data file made the final object file, and the commit noted in
        the record; its path (blocking, under the backend's key lock)."""
        header_len = self._data_offset - PREFIX_LEN
        with self._io:
            fd = self._fd()
            end = self._data_offset + meta.size
            if os.fstat(fd).st_size != end:
                os.ftruncate(fd, end)  # nothing past what was hashed
            pwrite_all(fd, header_block(encode_header(meta), header_len), 0)
            os.fsync(fd)
        driver = {**self._record.driver, "committing": meta_doc(meta)}
        _write_record(self._dir, replace(self._record, driver=driver))
        return os.path.join(self._dir, DATA)

    def release(self) -> None:
        with self._io:
            if self._data_fd is not None:
                os.close(self._data_fd)
                self._data_fd = None

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        await self._settle()
        meta = await self._uploads.commit(self, checksums.crc32c, checksums.sha256)
        done = _completed(self._record, meta)
        with storage_errors(self.key):
            await _wait(asyncio.ensure_future(asyncio.to_thread(_write_record, self._dir, done)))
        await self._close()
        return meta

    def close_sync(self) -> None:
        """Close the data file and release the lock (blocking)."""
        with self._io:
            if self._data_fd is not None:
                os.close(self._data_fd)
                self._data_fd = None
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    async def _close(self) -> None:
        await _wait(asyncio.ensure_future(asyncio.to_thread(self.close_sync)))

    async def suspend(self) -> None:
        try:
            await self._settle()
        finally:
            await self._close()

    def _abort_sync(self) -> None:
        with self._io:
            if self._lock is not None:
                self._uploads.remove(self._dir)
        self.close_sync()

    async def abort(self) -> None:
        try:
            with suppress(GatewayError, OSError):
                await self._settle()  # the upload goes anyway
        finally:
            await _wait(asyncio.ensure_future(asyncio.to_thread(self._abort_sync)))

"""Resumable uploads for the local backend: its UploadStore for the shared
engine (shared/resumable). The files of one upload and the writer of one
stream are in upload_files.

Each upload is a directory root/uploads/<handle>/ holding:

    data         the future object file: the placeholder header any write
                 streamed to disk starts with (local/format.py), then the bytes
                 received; commit installs it as the key, like a normal Put
    record.json  the upload's record (upload_records), replaced atomically:
                 written beside, fsynced, renamed, the directory fsynced

A checkpoint fsyncs the data file, then writes the record claiming its size:
the record never claims bytes that are not durable. It runs in a worker
thread while the stream goes on (one at a time), and commit and suspend wait
for it. A resumed stream truncates the data file to the recorded size: bytes
past the last checkpoint are not trusted.

A stream holds an exclusive flock on the upload's directory until it ends;
a second stream on the same upload gets UPLOAD_BUSY (from another process;
in this one the engine's one-writer guard refuses it first), and the kernel
drops the lock when the process dies. Removing an upload (AbortUpload, cleanup) takes
that lock, renames the directory into root/tmp, then deletes it: a crash
half-way leaves it in root/tmp, which the backend sweeps at start. An
AbortUpload that finds the lock held by another process's stream leaves the
file `aborted` in the directory instead: the upload is then not found for
every call, and that stream fails at its next checkpoint or commit and
removes the directory when it ends (else the next abort or cleanup does).

Commit writes the object's metadata into the record ("committing") before
installing the data file: if the process dies between installing it and
recording the upload as complete, the data file is gone (or, for a
create-only write, the key holds that generation) and the next query or
resume finds the upload complete.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence

from gateway.backends.base import Resumed
from gateway.backends.local import upload_files as files
from gateway.backends.local.format import (
    PREFIX_LEN,
    fsync_dir,
    header_block,
    make_dirs,
    read_current,
    reserved_header_len,
    storage_errors,
    write_all,
)
from gateway.backends.local.io import Committer
from gateway.backends.local.upload_files import (
    DATA,
    FILE_MODE,
    UploadWriter,
    committed_view,
    completed,
    is_aborted,
    lock_dir,
    mark_aborted,
    read_record,
)
from gateway.backends.shared.resumable import Listed
from gateway.backends.shared.upload_records import UploadRecord, meta_from
from gateway.domain.errors import GatewayError, Reason, upload_busy, upload_not_found
from gateway.domain.objects import WriteOptions

# What secrets.token_urlsafe makes: never "/", "." or "..".
_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class LocalUploads:
    """The local backend's UploadStore (shared/resumable), and its
    unfinished-upload counter."""

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

    def _record_of(self, key: str, directory: str) -> UploadRecord:
        record = read_record(directory)
        if record is None or record.key != key:
            raise upload_not_found(key=key)
        if record.complete is None and is_aborted(directory):
            raise upload_not_found(key=key)  # its writer removes it when it stops
        return record

    def remove_dir(self, directory: str) -> None:
        """Remove an upload's directory, its lock held (blocking)."""
        trash = os.path.join(self._tmp, secrets.token_hex(16) + ".upload")
        os.rename(directory, trash)
        fsync_dir(self._dir)
        shutil.rmtree(trash, ignore_errors=True)

    # Starting.

    async def create(self, key: str, options: WriteOptions, state: bytes) -> str:
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
        fd = os.open(os.path.join(directory, DATA), flags, FILE_MODE)
        try:
            write_all(fd, header_block(b"", header_len))
            os.fsync(fd)
        finally:
            os.close(fd)
        files.write_record(directory, record)
        fsync_dir(self._dir)
        return handle

    # Loading and resuming.

    async def load(self, key: str, handle: str) -> UploadRecord | None:
        if not _HANDLE.fullmatch(handle):
            return None
        with storage_errors(key):
            return await asyncio.to_thread(read_record, os.path.join(self._dir, handle))

    async def live(self, handle: str, record: UploadRecord) -> UploadRecord:
        directory = os.path.join(self._dir, handle)
        with storage_errors(record.key):
            return await asyncio.to_thread(self._live_sync, record, directory)

    def _live_sync(self, record: UploadRecord, directory: str) -> UploadRecord:
        if is_aborted(directory):
            raise upload_not_found(key=record.key)  # its writer removes it when it stops
        return committed_view(record, directory)

    async def reopen(self, handle: str, record: UploadRecord) -> Resumed:
        key, directory = record.key, os.path.join(self._dir, handle)
        task = asyncio.ensure_future(asyncio.to_thread(self._resume_sync, key, directory))
        try:
            with storage_errors(key):
                return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_close_unused)
            raise

    def _resume_sync(self, key: str, directory: str) -> Resumed:
        record = committed_view(self._record_of(key, directory), directory)
        if record.complete is not None:
            return record.status(), None
        try:
            lock = lock_dir(directory)
        except FileNotFoundError:
            raise upload_not_found(key=key) from None
        if lock is None:
            raise upload_busy(key=key)
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
        writer = UploadWriter(
            directory, record, lock, data_fd, data_offset, self.commit, self.remove_dir
        )
        return record.status(), writer

    def _recover(self, record: UploadRecord, directory: str) -> UploadRecord:
        """record, made complete if a commit got as far as installing the
        data file (the lock held; blocking)."""
        done = committed_view(record, directory)
        committing = record.driver.get("committing")
        if done is record and committing is not None and record.complete is None:
            # A create-only commit links the data file to the key, then
            # unlinks it: did it get that far?
            meta = meta_from(committing)
            current = read_current(self._path_of(record.key), record.key)
            if current is None or current.generation != meta.generation:
                return record
            done = completed(record, meta)
            os.unlink(os.path.join(directory, DATA))
        if done is not record:
            files.write_record(directory, done)
        return done

    # Removing.

    async def discard(self, handle: str, record: UploadRecord) -> bool:
        directory = os.path.join(self._dir, handle)
        with storage_errors(record.key):
            return await asyncio.to_thread(self._discard_sync, record, directory)

    def _discard_sync(self, record: UploadRecord, directory: str) -> bool:
        try:
            lock = lock_dir(directory)
        except FileNotFoundError:
            return False
        if lock is None:
            # Another process's stream writes it: it stops at its next
            # checkpoint or commit, and removes the upload.
            if committed_view(record, directory).complete is not None or is_aborted(directory):
                return False
            mark_aborted(directory)
            return True
        try:
            current = read_record(directory)
            if current is None:
                return False
            if is_aborted(directory):
                self.remove_dir(directory)  # its writer died before removing it
                return False
            if committed_view(current, directory).complete is not None:
                return False  # a finished upload keeps answering with its object
            self.remove_dir(directory)
            return True
        finally:
            os.close(lock)

    async def unfinished_uploads(self) -> tuple[int, int]:
        """(unfinished uploads, the bytes their data files take on disk)."""
        return await asyncio.to_thread(self._unfinished_sync)

    def _unfinished_sync(self) -> tuple[int, int]:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return 0, 0
        count = held = 0
        for name in names:
            try:
                # A finished upload keeps only its record: no data file.
                held += os.stat(os.path.join(self._dir, name, DATA)).st_size
            except (FileNotFoundError, NotADirectoryError):
                continue
            count += 1
        return count, held

    # The stale sweep.

    async def listing(self) -> Sequence[Listed]:
        return await asyncio.to_thread(self._listing_sync)

    def _listing_sync(self) -> list[Listed]:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            directory = os.path.join(self._dir, name)
            if not _HANDLE.fullmatch(name):
                continue
            try:
                record = _readable_record(directory)
                created = os.stat(directory).st_mtime if record is None else record.created_unix
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed meanwhile
            if is_aborted(directory):
                created = -math.inf  # its writer died before removing it: stale now
            found.append(Listed(name, record, created))
        return found

    async def remove(self, entry: Listed) -> bool:
        return await asyncio.to_thread(self._remove_sync, os.path.join(self._dir, entry.handle))

    async def would_remove(self, entry: Listed) -> bool:
        directory = os.path.join(self._dir, entry.handle)
        return await asyncio.to_thread(self._remove_sync, directory, dry_run=True)

    def _remove_sync(self, directory: str, *, dry_run: bool = False) -> bool:
        """Remove the upload in directory unless another process's stream
        holds it; whether it was unfinished. dry_run: take the lock as the
        removal would, and remove nothing."""
        try:
            lock = lock_dir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return False
        if lock is None:
            return False  # another process's stream is writing it
        try:
            record = _readable_record(directory)
            unfinished = record is None or committed_view(record, directory).complete is None
            if not dry_run:
                self.remove_dir(directory)
            return unfinished
        finally:
            os.close(lock)


def _readable_record(directory: str) -> UploadRecord | None:
    """directory's record; None when missing or unreadable (an unreadable
    upload is judged by its directory's age)."""
    try:
        return read_record(directory)
    except GatewayError:
        return None


def _close_unused(task: asyncio.Future[Resumed]) -> None:
    """Release the writer a cancelled resume got."""
    if task.cancelled() or task.exception() is not None:
        return
    writer = task.result()[1]
    if isinstance(writer, UploadWriter):
        writer.close_sync()

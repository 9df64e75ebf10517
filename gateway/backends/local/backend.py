"""A driver storing objects as files under a local directory.

Layout under root:

    root/objects/<key>   one file per object; the key's '/' segments are
                         directories ("a/b/c" is root/objects/a/b/c)
    root/tmp/            temp files of writes in flight
    root/uploads/        resumable uploads, one directory each (local/uploads.py)
    root/locks/          the per-key lock files of commits and deletes
                         (key_file_locks.py)

The format of an object file (a header, then the data) and the low-level
file helpers are in format.py, the readers and writers of those files in
io.py, the key -> file mapping, installing and removing object files in
object_files.py, the per-key locks in key_locks.py, and the walk of
root/objects that listing pages are cut from in listing.py.

A write becomes a temp file in root/tmp (made at commit if the write was
small enough to keep in memory, see io.py). Commit, in one thread hop
under the key's asyncio lock and then its file lock (which other processes
serving the root take too), checks the write's conditions against the
current object, gives the temp file its final header and fsyncs it, once,
renames it over the key, then fsyncs the directory (and the parent of every
directory it had to create for the key). Check-and-rename is thus atomic
between the processes sharing the root; a create-only write (if_none_match
"*" or if_generation_match 0) also links the temp file to the key instead,
which fails if the key exists. The fsync comes after the header, whose
generation is only known under the locks: writers of one key wait for each
other's fsync, not other keys' (but for the rare key sharing its lock file).

Temp files left behind by a crash are removed when the backend starts. A
writer holds an flock on its temp file, so a second gateway process starting
on the same root leaves the first one's writes in flight alone.

All blocking I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.backends.base import ObjectReader, ObjectWriter
from gateway.backends.local.format import KIND, open_with_header, read_current, storage_errors
from gateway.backends.local.io import (
    Finishable,
    LocalReader,
    LocalWriter,
)
from gateway.backends.local.key_file_locks import KeyFileLocks
from gateway.backends.local.key_locks import KeyLocks, run_to_completion
from gateway.backends.local.listing import walk_objects
from gateway.backends.local.object_files import ObjectFiles
from gateway.backends.local.temp_files import remove_temp_unless_locked
from gateway.backends.local.uploads import LocalUploads
from gateway.backends.observer import StoreObserver
from gateway.backends.shared.on_machine import on_machine_capabilities, refuse_remote_options
from gateway.domain import listing, ranges
from gateway.domain.checksums import etag_of
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import backend_unavailable, object_not_found
from gateway.domain.fsutil import make_private_dirs
from gateway.domain.objects import (
    NO_CONDITIONS,
    Conditions,
    CopyRequest,
    ListPage,
    ListQuery,
    ObjectMeta,
    WriteOptions,
)

COPY_CHUNK = 1024 * 1024


def _check_supported(options: WriteOptions) -> None:
    refuse_remote_options(options, KIND)


def _create_only(conditions: Conditions) -> str:
    """The condition of conditions requiring the key not to exist, if any:
    what ObjectFiles.install checks again as it installs the file."""
    if conditions.if_none_match == "*":
        return "if_none_match"
    if conditions.if_generation_match == 0:
        return "if_generation_match"
    return ""


class LocalBackend:
    """Objects as files under root/objects; see the module docstring."""

    def __init__(self, root: Path | str, observer: StoreObserver | None = None) -> None:
        """observer: told of each fsync of a write's file and directory."""
        self._observer = observer
        self._root = os.path.realpath(os.fspath(root))
        self._objects = os.path.join(self._root, "objects")
        self._objects_b = os.fsencode(self._objects)
        self._tmp = os.path.join(self._root, "tmp")
        self._files = ObjectFiles(self._objects, observer)
        self._key_locks = KeyLocks()
        self._key_file_locks = KeyFileLocks(os.path.join(self._root, "locks"))
        self._generation_lock = threading.Lock()
        self._last_generation = 0
        store = LocalUploads(self._root, self._tmp, self._path, self._commit, _check_supported)
        self.capabilities = on_machine_capabilities(store, self)
        self.start()

    def start(self) -> None:
        """Create the layout and remove temp files left behind by a crash."""
        make_private_dirs(self._objects)
        make_private_dirs(self._tmp)
        self._files.read_name_max()
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    remove_temp_unless_locked(entry.path)

    @property
    def kind(self) -> str:
        return KIND

    @property
    def root(self) -> Path:
        return Path(self._root)

    # Keys and paths.

    def _path(self, key: str) -> str:
        """The file of key (object_files.ObjectFiles.path)."""
        return self._files.path(key)

    def _next_generation(self, previous: ObjectMeta | None) -> int:
        with self._generation_lock:
            generation = max(time.time_ns(), self._last_generation + 1)
            if previous is not None:
                generation = max(generation, previous.generation + 1)
            self._last_generation = generation
            return generation

    # Reading.

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        path = self._path(key)
        current = await asyncio.to_thread(read_current, path, key)
        return check_existing(key, conditions, current)

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        return await self._open_reader(key, offset, limit, conditions)

    async def _open_reader(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> LocalReader:
        path = self._path(key)
        return await asyncio.to_thread(self._open_reader_sync, key, path, offset, limit, conditions)

    def _open_reader_sync(
        self, key: str, path: str, offset: int, limit: int | None, conditions: Conditions
    ) -> LocalReader:
        # Conditions and range are checked here, not on the event loop, so
        # that the reader's prefetch happens in this same thread hop.
        opened = open_with_header(path, key)
        if opened is None:
            check_conditions(key, conditions, None, read=True)
            raise object_not_found(key=key)
        fd, header = opened
        try:
            check_conditions(key, conditions, header.meta, read=True)
            start, end = ranges.resolve(header.meta.size, offset, limit)
        except BaseException:
            os.close(fd)
            raise
        return LocalReader.open(fd, header, start, end)

    # Writing.

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return self._open_writer(key, options)

    def _open_writer(self, key: str, options: WriteOptions) -> LocalWriter:
        _check_supported(options)
        self._path(key)  # reject keys this filesystem cannot store before any byte
        return LocalWriter(self._commit, key, options, self._tmp, self._observer)

    async def _commit(
        self, writer: Finishable, crc32c: int | None, sha256: bytes | None
    ) -> ObjectMeta:
        key = writer.key
        path = self._path(key)
        with storage_errors(key):
            async with self._key_locks.hold(key):
                return await run_to_completion(self._commit_sync, writer, path, crc32c, sha256)

    def _commit_sync(
        self, writer: Finishable, path: str, crc32c: int | None, sha256: bytes | None
    ) -> ObjectMeta:
        with self._key_file_locks.hold(writer.key):
            return self._commit_locked(writer, path, crc32c, sha256)

    def _commit_locked(
        self, writer: Finishable, path: str, crc32c: int | None, sha256: bytes | None
    ) -> ObjectMeta:
        key, options = writer.key, writer.options
        current = read_current(path, key)
        check_conditions(key, options.conditions, current, read=False)
        now = time.time_ns()
        meta = ObjectMeta(
            key=key,
            size=writer.size,
            etag=etag_of(sha256),
            generation=self._next_generation(current),
            create_time_ns=now,
            update_time_ns=now,
            content_type=options.content_type,
            metadata=dict(options.metadata),
            crc32c=crc32c,
            sha256=sha256,
        )
        tmp_path = writer.finish(meta)
        self._install(key, tmp_path, path, _create_only(options.conditions))
        writer.release()
        return meta

    def _install(self, key: str, tmp_path: str, path: str, create_only: str) -> None:
        """Make tmp_path the file of key (object_files.ObjectFiles.install)."""
        self._files.install(key, tmp_path, path, create_only)

    # Deleting.

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        path = self._path(key)
        async with self._key_locks.hold(key):
            return await run_to_completion(self._delete_sync, key, path, conditions)

    def _delete_sync(self, key: str, path: str, conditions: Conditions) -> bool:
        with self._key_file_locks.hold(key):
            return self._delete_locked(key, path, conditions)

    def _delete_locked(self, key: str, path: str, conditions: Conditions) -> bool:
        current = read_current(path, key)
        if conditions.any:
            check_conditions(key, conditions, current, read=False)
        if current is None:
            # No object: nothing there, a prefix of other objects, or a file
            # the gateway did not write, which it leaves alone (format.py).
            return False
        return self._files.remove(path)

    # Moving (capabilities.mover): a rename within the root.

    async def move(
        self, source_key: str, destination_key: str, conditions: Conditions = NO_CONDITIONS
    ) -> ObjectMeta:
        source_path, path = self._path(source_key), self._path(destination_key)
        first, second = sorted((source_key, destination_key))  # one order: no deadlock
        with storage_errors(destination_key):
            async with self._key_locks.hold(first), self._key_locks.hold(second):
                return await run_to_completion(
                    self._move_sync, source_key, source_path, destination_key, path, conditions
                )

    def _move_sync(
        self, source_key: str, source_path: str, key: str, path: str, conditions: Conditions
    ) -> ObjectMeta:
        with self._key_file_locks.hold_all(source_key, key):
            source = read_current(source_path, source_key)
            if source is None:
                raise object_not_found(key=source_key)
            check_conditions(key, conditions, read_current(path, key), read=False)
            # The file keeps its header: the object keeps the generation and
            # times it was committed with under source_key.
            self._install(key, source_path, path, _create_only(conditions))
            return dataclasses.replace(source, key=key)

    # Listing.

    async def list(self, query: ListQuery) -> ListPage:
        return await listing.build_page(self._walk, query)

    def _walk(self, prefix: str, after: bytes) -> AsyncIterator[ObjectMeta]:
        return walk_objects(self._objects_b, prefix, after)

    # Copying.

    async def copy(self, request: CopyRequest) -> ObjectMeta:
        options = request.options
        _check_supported(options)
        reader = await self._open_reader(request.source_key, 0, None, request.source_conditions)
        try:
            source = reader.meta
            sha256 = source.sha256  # None: stored without one (its bucket's choice)
            if not request.replace_metadata:
                options = WriteOptions(
                    content_type=source.content_type,
                    metadata=dict(source.metadata),
                    conditions=options.conditions,
                    size_hint=source.size,
                )
            writer = self._open_writer(request.destination_key, options)
            try:
                # A small source arrives prefetched and is buffered by the
                # writer: opening, then committing, are the only thread hops.
                async for data in reader.chunks(COPY_CHUNK):
                    await writer.write(data)
                return await self._commit(writer, source.crc32c, sha256)
            finally:
                await asyncio.shield(writer.abort())
        finally:
            await reader.close()

    # Health.

    def _probe_sync(self) -> str:
        for path in (self._objects, self._tmp):
            if not os.path.isdir(path):
                return f"{path} is not a directory"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"{path} is not writable"
        return ""

    async def probe(self) -> None:
        problem = await asyncio.to_thread(self._probe_sync)
        if problem:
            raise backend_unavailable(backend=KIND, detail=problem)

    async def close(self) -> None:
        return None

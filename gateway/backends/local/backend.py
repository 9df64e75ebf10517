"""A driver storing objects as files under a local directory.

Layout under root:

    root/objects/<key>   one file per object; the key's '/' segments are
                         directories ("a/b/c" is root/objects/a/b/c)
    root/tmp/            temp files of writes in flight
    root/uploads/        resumable uploads, one directory each (local/uploads.py)

The format of an object file (a header, then the data) and the low-level
file helpers are in local_format, the readers and writers of those files in
local_io, and the walk of root/objects that listing pages are cut from in
local_listing.

A write becomes a temp file in root/tmp (made at commit if the write was
small enough to keep in memory, see local_io). Commit, in one thread hop
under the key's asyncio lock, checks the write's conditions against the
current object, gives the temp file its final header and fsyncs it, once,
renames it over the key, then fsyncs the directory (and the parent of every
directory it had to create for the key). Check-and-rename is thus atomic
within the process; a create-only write (if_none_match "*" or
if_generation_match 0) links the temp file to the key instead, which fails
if the key exists, so two processes sharing a directory cannot both create
it. The fsync comes after the header, whose generation is only known under
the lock: writers of one key wait for each other's fsync, not other keys'.

Temp files left behind by a crash are removed when the backend starts. A
writer holds an flock on its temp file, so a second gateway process starting
on the same root leaves the first one's writes in flight alone.

All blocking I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from gateway.backends.base import Capabilities, ObjectReader, ObjectWriter
from gateway.backends.local.format import (
    KIND,
    fsync_dir,
    make_dirs,
    open_with_header,
    read_current,
    storage_errors,
)
from gateway.backends.local.io import (
    Finishable,
    LocalReader,
    LocalWriter,
    remove_temp_unless_locked,
)
from gateway.backends.local.listing import walk_objects
from gateway.backends.local.uploads import LocalUploads
from gateway.backends.shared.resumable import ResumableUploads
from gateway.domain import listing, ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import (
    GatewayError,
    Reason,
    backend_unavailable,
    key_conflict,
    object_not_found,
    precondition_failed,
    unsupported,
)
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
_INSTALL_ATTEMPTS = 10

T = TypeVar("T")


def _check_supported(options: WriteOptions) -> None:
    for name in ("storage_class", "server_side_encryption", "kms_key_id"):
        if getattr(options, name):
            raise unsupported(name, KIND)


async def _run_to_completion(func: Callable[..., T], *args: Any) -> T:
    """func(*args) in a thread; if the caller is cancelled meanwhile, wait for
    the thread to finish before letting the cancellation through, so that a
    lock held around this call covers the work actually done."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
        raise


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class LocalBackend:
    """Objects as files under root/objects; see the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self._root = os.path.realpath(os.fspath(root))
        self._objects = os.path.join(self._root, "objects")
        self._objects_b = os.fsencode(self._objects)
        self._tmp = os.path.join(self._root, "tmp")
        self._locks: dict[str, _KeyLock] = {}
        self._generation_lock = threading.Lock()
        self._last_generation = 0
        self._name_max = 255
        store = LocalUploads(self._root, self._tmp, self._path, self._commit, _check_supported)
        uploads = ResumableUploads(store)
        self.capabilities = Capabilities(uploads=uploads, upload_counter=store, cleaner=uploads)
        self.start()

    def start(self) -> None:
        """Create the layout and remove temp files left behind by a crash."""
        make_private_dirs(self._objects)
        make_private_dirs(self._tmp)
        try:
            self._name_max = os.pathconf(self._objects, "PC_NAME_MAX")
        except (OSError, ValueError):
            self._name_max = 255
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
        """The file of key: root/objects joined with the key's segments."""
        segments = key.split("/")
        for segment in segments:
            if len(segment.encode()) > self._name_max:
                raise _name_too_long(key, self._name_max)
        path = os.sep.join([self._objects, *segments])
        # Keys arrive validated; this is defence in depth. A path normpath
        # would change ("..", ".", "//") could alias another key or escape.
        if (
            os.path.normpath(path) != path
            or path == self._objects
            or os.path.commonpath([self._objects, path]) != self._objects
        ):
            raise GatewayError(
                Reason.INVALID_KEY,
                f"key {key!r} does not map to a file inside the local backend's directory",
                key=key,
            )
        return path

    def _next_generation(self, previous: ObjectMeta | None) -> int:
        with self._generation_lock:
            generation = max(time.time_ns(), self._last_generation + 1)
            if previous is not None:
                generation = max(generation, previous.generation + 1)
            self._last_generation = generation
            return generation

    @asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

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
            raise object_not_found(key)
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
        return LocalWriter(self._commit, key, options, self._tmp)

    async def _commit(self, writer: Finishable, crc32c: int | None, sha256: bytes) -> ObjectMeta:
        key = writer.key
        path = self._path(key)
        with storage_errors(key):
            async with self._key_lock(key):
                return await _run_to_completion(self._commit_sync, writer, path, crc32c, sha256)

    def _commit_sync(
        self, writer: Finishable, path: str, crc32c: int | None, sha256: bytes
    ) -> ObjectMeta:
        key, options = writer.key, writer.options
        current = read_current(path, key)
        check_conditions(key, options.conditions, current, read=False)
        now = time.time_ns()
        meta = ObjectMeta(
            key=key,
            size=writer.size,
            etag=sha256.hex()[:32],
            generation=self._next_generation(current),
            create_time_ns=now,
            update_time_ns=now,
            content_type=options.content_type,
            metadata=dict(options.metadata),
            crc32c=crc32c,
            sha256=sha256,
        )
        tmp_path = writer.finish(meta)
        conds = options.conditions
        create_only = ""
        if conds.if_none_match == "*":
            create_only = "if_none_match"
        elif conds.if_generation_match == 0:
            create_only = "if_generation_match"
        self._install(key, tmp_path, path, create_only)
        writer.release()
        return meta

    def _install(self, key: str, tmp_path: str, path: str, create_only: str) -> None:
        """Make tmp_path the file of key, then fsync its directory (blocking).

        The key's directory is created first if need be, durably: see
        local_format.make_dirs.

        create_only names the condition that requires key not to exist, if
        any: then tmp_path is linked, which fails if key exists by now."""
        parent = os.path.dirname(path)
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                make_dirs(parent)
            except (FileExistsError, NotADirectoryError):
                raise self._conflict_with_file(key) from None
            except FileNotFoundError:
                # A delete removed a directory just created, as it was empty.
                continue
            except OSError as error:
                if error.errno == errno.ENAMETOOLONG:
                    raise _name_too_long(key, self._name_max) from None
                raise
            try:
                if create_only:
                    os.link(tmp_path, path)
                    os.unlink(tmp_path)
                else:
                    os.replace(tmp_path, path)
            except FileNotFoundError:
                # A delete removed the (empty) parent directory meanwhile.
                continue
            except NotADirectoryError:
                raise self._conflict_with_file(key) from None
            except (IsADirectoryError, FileExistsError):
                if os.path.isdir(path) and not os.path.islink(path):
                    if _remove_empty_dir(path):
                        continue  # an empty leftover directory: not a conflict
                    raise key_conflict(
                        key,
                        f"{key!r} is a prefix of existing objects ({key + '/'!r}...), "
                        "so it cannot also be an object",
                    ) from None
                raise precondition_failed(key, create_only or "if_none_match") from None
            except OSError as error:
                if error.errno == errno.ENAMETOOLONG:
                    raise _name_too_long(key, self._name_max) from None
                raise
            fsync_dir(parent)
            return
        # Not the client's fault: the interceptor logs it and answers INTERNAL.
        raise RuntimeError(f"local backend: could not create {key!r}: its directory kept vanishing")

    def _conflict_with_file(self, key: str) -> GatewayError:
        segments = key.split("/")
        for depth in range(1, len(segments)):
            prefix = "/".join(segments[:depth])
            candidate = os.path.join(self._objects, *segments[:depth])
            if os.path.lexists(candidate) and not os.path.isdir(candidate):
                return key_conflict(
                    key, f"{prefix!r} is an object, so {key!r} cannot be created under it"
                )
        return key_conflict(key, "a parent path is an object")

    # Deleting.

    async def delete(self, key: str, conditions: Conditions = NO_CONDITIONS) -> bool:
        path = self._path(key)
        async with self._key_lock(key):
            return await _run_to_completion(self._delete_sync, key, path, conditions)

    def _delete_sync(self, key: str, path: str, conditions: Conditions) -> bool:
        current = read_current(path, key)
        if conditions.any:
            check_conditions(key, conditions, current, read=False)
        if current is None:
            # No object: nothing there, a prefix of other objects, or a file
            # the gateway did not write, which it leaves alone (local_format).
            return False
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        parent = os.path.dirname(path)
        while parent != self._objects and _remove_empty_dir(parent):
            parent = os.path.dirname(parent)
        return True

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
            sha256 = source.sha256
            if sha256 is None:  # read_header refuses such headers
                raise RuntimeError(f"local backend: {request.source_key!r} has no sha256")
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
            raise backend_unavailable(KIND, problem)

    async def close(self) -> None:
        return None


def _name_too_long(key: str, name_max: int) -> GatewayError:
    return GatewayError(
        Reason.INVALID_KEY,
        f"key {key!r} has a path segment longer than {name_max} bytes, "
        "which the local backend's filesystem cannot store",
        key=key,
    )


def _remove_empty_dir(path: str) -> bool:
    """rmdir path; False when it is not empty (or gone, or not a directory)."""
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True

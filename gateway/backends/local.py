"""A driver storing objects as files under a local directory.

Layout under root:

    root/objects/<key>   one file per object; the key's '/' segments are
                         directories ("a/b/c" is root/objects/a/b/c)
    root/tmp/            temp files of writes in flight

Each object file is a header followed by the object's raw bytes:

    b"SGW1"              magic
    N                    4-byte big-endian length of the JSON that follows
    N bytes of JSON      size, content_type, metadata, etag, generation,
                         crc32c, sha256 (hex), create_time_ns, update_time_ns,
                         padded with trailing spaces
    data                 size bytes

Metadata and data live in one file so that one atomic rename commits both: a
separate sidecar file could be seen without its data or with the data of
another generation. A reader that opened the file keeps a consistent snapshot
even if the key is replaced or deleted afterwards.

A write creates a temp file in root/tmp holding the header with what is known
up front (content type, metadata) padded with spaces to leave room for the
fields only known at commit (size, checksums, generation...), then appends
the data. Commit writes the final header over the placeholder (JSON allows
the trailing spaces), fsyncs the file, checks the write's conditions against
the current object and renames the temp file over the key, then fsyncs the
directory. Check-and-rename is atomic within the process (one asyncio lock
per key); a create-only write (if_none_match "*" or if_generation_match 0)
links the temp file to the key instead, which fails if the key exists, so two
processes sharing a directory cannot both create it.

Temp files left behind by a crash are removed when the backend starts. A
writer holds an flock on its temp file, so a second gateway process starting
on the same root leaves the first one's writes in flight alone.

All blocking I/O runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway import listing, ranges
from gateway.backends.base import (
    DEFAULT_CONTENT_TYPE,
    NO_CONDITIONS,
    Checksums,
    Conditions,
    ListPage,
    ObjectMeta,
    ObjectReader,
    ObjectWriter,
    WriteOptions,
)
from gateway.conditions import check as check_conditions
from gateway.errors import (
    GatewayError,
    Reason,
    backend_unavailable,
    key_conflict,
    object_not_found,
    precondition_failed,
    unsupported,
)

KIND = "local"
MAGIC = b"SGW1"
_PREFIX_LEN = len(MAGIC) + 4
# Room in the header for the fields only known at commit (they need under 300 bytes).
LATE_FIELDS_ALLOWANCE = 512
# Headers are read with one pread of this size when they fit.
_HEADER_PROBE = 4096
# A header longer than this is not one we wrote.
_MAX_HEADER = 64 * 1024 * 1024
COPY_CHUNK = 1024 * 1024
# Files whose headers one thread hop reads while listing.
_LIST_BATCH = 128
_INSTALL_ATTEMPTS = 10
_FILE_MODE = 0o600

T = TypeVar("T")
# (key, or key prefix ending in "/" for a directory; whether a directory)
_Entries = list[tuple[bytes, bool]]


def _check_supported(options: WriteOptions) -> None:
    for name in ("storage_class", "server_side_encryption", "kms_key_id"):
        if getattr(options, name):
            raise unsupported(name, KIND)


def _corrupt(path: str, why: str) -> GatewayError:
    return GatewayError(
        Reason.INTERNAL, f"local backend: {path!r} is not a valid object file: {why}"
    )


@contextmanager
def _storage_errors(key: str) -> Iterator[None]:
    """Turn OSErrors that say the storage is full or broken into GatewayErrors."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise GatewayError(
                Reason.QUOTA_EXCEEDED,
                f"local backend: no space left to store {key!r} ({error.strerror})",
                key=key,
            ) from error
        if error.errno in (errno.EROFS, errno.EIO):
            raise backend_unavailable(KIND, f"{error.strerror} while storing {key!r}") from error
        raise


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


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _pread_exact(fd: int, size: int, offset: int) -> bytes:
    """size bytes at offset; fewer only at the end of the file."""
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _Header:
    meta: ObjectMeta
    data_offset: int


def _encode_header(meta: ObjectMeta) -> bytes:
    """The JSON of a header, without magic, length or padding."""
    doc: dict[str, Any] = {
        "content_type": meta.content_type,
        "metadata": dict(meta.metadata),
        "size": meta.size,
        "etag": meta.etag,
        "generation": meta.generation,
        "crc32c": meta.crc32c,
        "sha256": None if meta.sha256 is None else meta.sha256.hex(),
        "create_time_ns": meta.create_time_ns,
        "update_time_ns": meta.update_time_ns,
    }
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _reserved_header_len(content_type: str, metadata: dict[str, str]) -> int:
    early = {"content_type": content_type, "metadata": metadata}
    return len(json.dumps(early, ensure_ascii=True, separators=(",", ":"))) + (
        LATE_FIELDS_ALLOWANCE
    )


def _read_header(fd: int, key: str, path: str) -> _Header:
    head = _pread_exact(fd, _HEADER_PROBE, 0)
    if len(head) < _PREFIX_LEN or head[: len(MAGIC)] != MAGIC:
        raise _corrupt(path, "bad magic")
    length = int.from_bytes(head[len(MAGIC) : _PREFIX_LEN], "big")
    if length > _MAX_HEADER:
        raise _corrupt(path, f"header length {length}")
    data_offset = _PREFIX_LEN + length
    raw = head[_PREFIX_LEN:data_offset]
    if len(raw) < length:
        raw += _pread_exact(fd, length - len(raw), len(head))
    if len(raw) < length:
        raise _corrupt(path, "truncated header")
    try:
        doc = json.loads(raw)
        sha256 = doc.get("sha256")
        metadata = doc.get("metadata") or {}
        meta = ObjectMeta(
            key=key,
            size=int(doc["size"]),
            etag=str(doc["etag"]),
            generation=int(doc["generation"]),
            create_time_ns=int(doc["create_time_ns"]),
            update_time_ns=int(doc["update_time_ns"]),
            content_type=str(doc.get("content_type") or DEFAULT_CONTENT_TYPE),
            metadata={str(k): str(v) for k, v in metadata.items()},
            crc32c=None if doc.get("crc32c") is None else int(doc["crc32c"]),
            sha256=None if sha256 is None else bytes.fromhex(sha256),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise _corrupt(path, f"bad header ({error})") from None
    return _Header(meta, data_offset)


def _open_object(path: str) -> int | None:
    """A read-only fd on the object file at path; None when there is none."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            return None
        raise


def _read_current(path: str, key: str) -> ObjectMeta | None:
    """The metadata of the object file at path, None when there is none."""
    fd = _open_object(path)
    if fd is None:
        return None
    try:
        if not _is_regular(fd):
            return None
        return _read_header(fd, key, path).meta
    finally:
        os.close(fd)


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


class _LocalReader:
    """An open object file; the fd pins the generation it was opened at."""

    def __init__(self, fd: int, header: _Header, start: int, end: int) -> None:
        self._fd = fd
        self._meta = header.meta
        self._data_offset = header.data_offset
        self._start = start
        self._end = end
        # Held by every thread using the fd: close waits for a read in flight
        # (one whose await was cancelled included) before the fd can be reused.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def meta(self) -> ObjectMeta:
        return self._meta

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._end

    def _read(self, size: int, position: int) -> bytes:
        with self._lock:
            if self._closed:
                return b""
            return _pread_exact(self._fd, size, self._data_offset + position)

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        position = self._start
        while position < self._end:
            data = await asyncio.to_thread(
                self._read, min(chunk_size, self._end - position), position
            )
            if not data:
                if self._closed:
                    return
                raise GatewayError(
                    Reason.INTERNAL,
                    f"local backend: object {self._meta.key!r} is shorter than its header says",
                )
            position += len(data)
            yield data

    def _close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    async def close(self) -> None:
        if not self._closed:
            await asyncio.shield(asyncio.to_thread(self._close))


class _LocalWriter:
    """A temp file in root/tmp that commit renames over the key."""

    def __init__(
        self,
        backend: LocalBackend,
        key: str,
        options: WriteOptions,
        fd: int,
        tmp_path: str,
        header_len: int,
    ) -> None:
        self._backend = backend
        self._key = key
        self._options = options
        self._fd = fd
        self._tmp_path = tmp_path
        self._header_len = header_len
        self._size = 0
        self._lock = threading.Lock()  # held by every thread using the fd
        self._closed = False  # fd closed
        self._done = False  # committed or aborted

    @classmethod
    def create(
        cls, backend: LocalBackend, key: str, options: WriteOptions, tmp_dir: str
    ) -> _LocalWriter:
        """Create the temp file and its placeholder header (blocking)."""
        header_len = _reserved_header_len(options.content_type, dict(options.metadata))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            path = os.path.join(tmp_dir, secrets.token_hex(16) + ".tmp")
            try:
                fd = os.open(path, flags, _FILE_MODE)
                break
            except FileExistsError:
                continue
        try:
            # Best effort: a filesystem without flock only loses the guard
            # against another process's start() removing this file.
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            placeholder = MAGIC + header_len.to_bytes(4, "big") + b" " * header_len
            _write_all(fd, placeholder)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(backend, key, options, fd, path, header_len)

    @property
    def key(self) -> str:
        return self._key

    @property
    def options(self) -> WriteOptions:
        return self._options

    @property
    def size(self) -> int:
        return self._size

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: write after abort")
            _write_all(self._fd, data)

    async def write(self, data: bytes) -> None:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "write after the writer was committed or aborted")
        if not data:
            return
        with _storage_errors(self._key):
            await asyncio.to_thread(self._write, data)
        self._size += len(data)

    def write_header(self, meta: ObjectMeta) -> None:
        """Write the final header over the placeholder and fsync (blocking)."""
        doc = _encode_header(meta)
        if len(doc) > self._header_len:
            raise GatewayError(Reason.INTERNAL, "local backend: header outgrew its reservation")
        with self._lock:
            if self._closed:
                raise GatewayError(Reason.INTERNAL, "local backend: commit after abort")
            _pwrite_all(self._fd, doc + b" " * (self._header_len - len(doc)), _PREFIX_LEN)
            os.fsync(self._fd)

    def fsync(self) -> None:
        with self._lock:
            if not self._closed:
                os.fsync(self._fd)

    @property
    def tmp_path(self) -> str:
        return self._tmp_path

    def copy_from(self, source: _LocalReader, position: int, size: int) -> int:
        """Append up to size bytes of source from position (blocking)."""
        data = source._read(size, position)
        self._write(data)
        self._size += len(data)
        return len(data)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        if self._done:
            raise GatewayError(Reason.INTERNAL, "commit after the writer was committed or aborted")
        try:
            return await self._backend._commit(self, checksums.crc32c, checksums.sha256)
        finally:
            await asyncio.shield(self.abort())

    def _discard(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
        # After a commit the temp file is gone (renamed, or linked then
        # unlinked); after an abort it is removed here.
        with suppress(FileNotFoundError):
            os.unlink(self._tmp_path)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        await asyncio.to_thread(self._discard)


class _Frame:
    __slots__ = ("entries", "index")

    def __init__(self, entries: _Entries) -> None:
        self.entries = entries
        self.index = 0


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
        self.start()

    def start(self) -> None:
        """Create the layout and remove temp files left behind by a crash."""
        os.makedirs(self._objects, exist_ok=True)
        os.makedirs(self._tmp, exist_ok=True)
        try:
            self._name_max = os.pathconf(self._objects, "PC_NAME_MAX")
        except (OSError, ValueError):
            self._name_max = 255
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    _remove_unless_locked(entry.path)

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

    def _open_sync(self, key: str) -> tuple[int, _Header] | None:
        path = self._path(key)
        fd = _open_object(path)
        if fd is None:
            return None
        try:
            if not _is_regular(fd):
                os.close(fd)
                return None
            header = _read_header(fd, key, path)
            if os.fstat(fd).st_size < header.data_offset + header.meta.size:
                raise _corrupt(path, "shorter than its header says")
        except BaseException:
            os.close(fd)
            raise
        return fd, header

    async def head(self, key: str, conditions: Conditions = NO_CONDITIONS) -> ObjectMeta:
        path = self._path(key)
        current = await asyncio.to_thread(_read_current, path, key)
        check_conditions(key, conditions, current, read=True)
        if current is None:
            raise object_not_found(key)
        return current

    async def open_read(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> ObjectReader:
        return await self._open_reader(key, offset, limit, conditions)

    async def _open_reader(
        self, key: str, offset: int, limit: int | None, conditions: Conditions
    ) -> _LocalReader:
        opened = await asyncio.to_thread(self._open_sync, key)
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
        return _LocalReader(fd, header, start, end)

    # Writing.

    async def open_write(self, key: str, options: WriteOptions) -> ObjectWriter:
        return await self._open_writer(key, options)

    async def _open_writer(self, key: str, options: WriteOptions) -> _LocalWriter:
        _check_supported(options)
        self._path(key)  # reject keys this filesystem cannot store before any byte
        with _storage_errors(key):
            return await asyncio.to_thread(_LocalWriter.create, self, key, options, self._tmp)

    async def _commit(self, writer: _LocalWriter, crc32c: int | None, sha256: bytes) -> ObjectMeta:
        key = writer.key
        path = self._path(key)
        with _storage_errors(key):
            # The bulk of the data reaches the disk outside the key's lock.
            await asyncio.to_thread(writer.fsync)
            async with self._key_lock(key):
                return await _run_to_completion(self._commit_sync, writer, path, crc32c, sha256)

    def _commit_sync(
        self, writer: _LocalWriter, path: str, crc32c: int | None, sha256: bytes
    ) -> ObjectMeta:
        key, options = writer.key, writer.options
        current = _read_current(path, key)
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
        writer.write_header(meta)
        conds = options.conditions
        create_only = ""
        if conds.if_none_match == "*":
            create_only = "if_none_match"
        elif conds.if_generation_match == 0:
            create_only = "if_generation_match"
        self._install(key, writer.tmp_path, path, create_only)
        return meta

    def _install(self, key: str, tmp_path: str, path: str, create_only: str) -> None:
        """Make tmp_path the file of key, then fsync its directory (blocking).

        create_only names the condition that requires key not to exist, if
        any: then tmp_path is linked, which fails if key exists by now."""
        parent = os.path.dirname(path)
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                os.makedirs(parent, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise self._conflict_with_file(key) from None
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
            _fsync_dir(parent)
            return
        raise GatewayError(
            Reason.INTERNAL,
            f"local backend: could not create {key!r}: its directory kept disappearing",
            key=key,
        )

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
        if conditions.any:
            check_conditions(key, conditions, _read_current(path, key), read=False)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                return False  # a prefix of other objects, not an object
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        parent = os.path.dirname(path)
        while parent != self._objects and _remove_empty_dir(parent):
            parent = os.path.dirname(parent)
        return True

    # Listing.

    async def list(
        self, prefix: str, delimiter: str, start_after: str, page_size: int, page_token: str
    ) -> ListPage:
        return await listing.build_page(
            self._walk, prefix, delimiter, start_after, page_size, page_token
        )

    def _scan(self, directory: bytes, prefix: bytes, after: bytes) -> _Entries:
        """(key or key prefix ending in '/', is_dir) for the entries of the
        directory whose key prefix is directory, in key order, without those
        that cannot hold a key starting with prefix and greater than after."""
        path = self._objects_b + b"/" + directory if directory else self._objects_b
        found: _Entries = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            sub = directory + entry.name + b"/"
                            # Every key below starts with sub: skip the subtree
                            # unless one may start with prefix and exceed after.
                            if (sub.startswith(prefix) or prefix.startswith(sub)) and (
                                sub > after or after.startswith(sub)
                            ):
                                found.append((sub, True))
                        elif entry.is_file(follow_symlinks=False):
                            name = directory + entry.name
                            if name.startswith(prefix) and name > after:
                                found.append((name, False))
                    except OSError:
                        continue
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                return []
            raise
        found.sort()
        return found

    def _read_metas(self, names: Iterable[bytes]) -> Sequence[ObjectMeta]:
        metas = []
        for name in names:
            try:
                key = name.decode("utf-8")
            except UnicodeDecodeError:
                continue  # not a file this backend wrote
            path = os.fsdecode(self._objects_b + b"/" + name)
            try:
                meta = _read_current(path, key)
            except (OSError, GatewayError):
                continue  # removed meanwhile, or not an object file
            if meta is not None:
                metas.append(meta)
        return metas

    async def _walk(self, prefix: str, after: bytes) -> AsyncIterator[ObjectMeta]:
        encoded = prefix.encode()
        # Start in the deepest directory the prefix names completely.
        base, slash, _ = encoded.rpartition(b"/")
        start = base + slash
        # Depth first: a stack of (sorted entries of a directory, next index).
        frames = [_Frame(await asyncio.to_thread(self._scan, start, encoded, after))]
        while frames:
            frame = frames[-1]
            entries, index = frame.entries, frame.index
            if index >= len(entries):
                frames.pop()
                continue
            name, is_dir = entries[index]
            if is_dir:
                frame.index = index + 1
                sub = await asyncio.to_thread(self._scan, name, encoded, after)
                frames.append(_Frame(sub))
                continue
            stop = index
            while stop < len(entries) and not entries[stop][1] and stop - index < _LIST_BATCH:
                stop += 1
            frame.index = stop
            names = [entry[0] for entry in entries[index:stop]]
            for meta in await asyncio.to_thread(self._read_metas, names):
                yield meta

    # Copying.

    async def copy(
        self,
        source_key: str,
        destination_key: str,
        source_conditions: Conditions,
        options: WriteOptions,
        replace_metadata: bool,
    ) -> ObjectMeta:
        _check_supported(options)
        reader = await self._open_reader(source_key, 0, None, source_conditions)
        try:
            source = reader.meta
            if not replace_metadata:
                options = WriteOptions(
                    content_type=source.content_type,
                    metadata=dict(source.metadata),
                    conditions=options.conditions,
                    size_hint=source.size,
                )
            writer = await self._open_writer(destination_key, options)
            try:
                position = 0
                while position < source.size:
                    step = min(COPY_CHUNK, source.size - position)
                    with _storage_errors(destination_key):
                        copied = await asyncio.to_thread(writer.copy_from, reader, position, step)
                    if copied == 0:
                        raise _corrupt(source_key, "shorter than its header says")
                    position += copied
                sha256 = source.sha256
                if sha256 is None:
                    raise _corrupt(source_key, "no sha256 in its header")
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


def _remove_unless_locked(path: str) -> None:
    """Remove a leftover temp file unless a live writer holds its flock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        with suppress(OSError):
            os.unlink(path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # a writer in another process is using it
    finally:
        os.close(fd)
    with suppress(FileNotFoundError):
        os.unlink(path)

"""The local backend's object file format, and the low-level file helpers.

Each object file is a header followed by the object's raw bytes:

    b"SGW1"              magic
    N                    4-byte big-endian length of the JSON that follows
    N bytes of JSON      size, content_type, metadata, etag, generation,
                         crc32c, sha256 (hex; "": not computed), create_time_ns, update_time_ns,
                         padded with trailing spaces
    data                 size bytes

Metadata and data live in one file so that one atomic rename commits both: a
separate sidecar file could be seen without its data or with the data of
another generation. A reader that opened the file keeps a consistent snapshot
even if the key is replaced or deleted afterwards.

A write whose file is created before commit (one too big to buffer) starts
it with a placeholder header: the magic, a length with room for what is
known up front (content type, metadata) plus an allowance for the fields
only known at commit (size, checksums, generation...), and that many spaces.
Commit writes the final JSON over the placeholder, padded with spaces to the
same length (JSON allows the trailing spaces), so the data after it never
moves. A file created at commit gets its final header straight away, with no
room to spare.

Everything here is blocking; callers run it in worker threads.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import GatewayError, Reason, backend_unavailable
from gateway.domain.fsutil import fsync_dir as fsync_dir  # re-exported: tests wrap it here
from gateway.domain.fsutil import make_private_dirs
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, ObjectMeta

log = logging.getLogger(__name__)

KIND = "local"
MAGIC = b"SGW1"
# Magic and the 4-byte header length: where the header's JSON starts.
PREFIX_LEN = len(MAGIC) + 4
# Room in the header for the fields only known at commit (they need under 300 bytes).
LATE_FIELDS_ALLOWANCE = 512
# Headers are read with one pread of this size when they fit.
_HEADER_PROBE = 4096
# A header longer than this is not one we wrote.
_MAX_HEADER = 64 * 1024 * 1024


class NotAnObjectFile(Exception):
    """A file under root/objects that is not an object file the gateway wrote
    (someone else's, or damaged). It is no object: every call treats its key
    as absent (list skips it, head/get find nothing, delete leaves it alone),
    and the operator is told once, in the log, which file it is."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


# Files already reported, so that listing a directory with a foreign file in
# it does not log it on every call (bounded: a flood of them is logged again).
_reported: set[str] = set()
_REPORTED_MAX = 1024


def _report(problem: NotAnObjectFile) -> None:
    if problem.path in _reported:
        return
    if len(_reported) >= _REPORTED_MAX:
        _reported.clear()
    _reported.add(problem.path)
    log.warning(
        "local backend: ignoring %s: not an object file the gateway wrote (%s); "
        "its key reads as absent until it is removed or overwritten",
        problem.path,
        problem.why,
    )


def invalid_object_file(path: str, why: str) -> NotAnObjectFile:
    """The error for a file under root/objects that is not an object file."""
    return NotAnObjectFile(path, why)


@contextmanager
def storage_errors(key: str) -> Iterator[None]:
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
            raise backend_unavailable(
                backend=KIND, detail=f"{error.strerror} while storing {key!r}"
            ) from error
        raise


# Low-level file helpers.


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def pread_exact(fd: int, size: int, offset: int) -> bytes:
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


def make_dirs(path: str) -> None:
    """Create directory path and its missing parents, durably.

    Like os.makedirs(path, exist_ok=True), but one level at a time, fsyncing
    the parent of each directory created: a file renamed into path and then
    fsynced would otherwise still be lost by a power cut if the entry of a
    new directory above it had not reached the disk. A directory a concurrent
    creator made first is accepted, and its parent fsynced too, since that
    creator may not have got that far yet.

    Raises FileExistsError or NotADirectoryError when a component is not a
    directory, FileNotFoundError when a component created here was removed
    (by a concurrent delete of an emptied directory) before its child was.
    """
    make_private_dirs(path, made=_fsync_parent)


def _fsync_parent(directory: str) -> None:
    fsync_dir(os.path.dirname(directory))


def open_object(path: str) -> int | None:
    """A read-only fd on the object file at path; None when there is none."""
    try:
        # O_NONBLOCK: opening a FIFO someone left there must not wait for a
        # writer (it is then no regular file, hence no object). Reads of
        # regular files ignore the flag.
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            return None
        raise


def is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


# The header.


@dataclass(frozen=True, slots=True)
class Header:
    meta: ObjectMeta
    data_offset: int


def encode_header(meta: ObjectMeta) -> bytes:
    """The JSON of a header, without magic, length or padding."""
    doc: dict[str, Any] = {
        "content_type": meta.content_type,
        "metadata": dict(meta.metadata),
        "size": meta.size,
        "etag": meta.etag,
        "generation": meta.generation,
        "crc32c": meta.crc32c,
        # "": not computed (the bucket's choice); a header without one is damaged.
        "sha256": "" if meta.sha256 is None else meta.sha256.hex(),
        "create_time_ns": meta.create_time_ns,
        "update_time_ns": meta.update_time_ns,
    }
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def reserved_header_len(content_type: str, metadata: dict[str, str]) -> int:
    """The JSON length to reserve for the header of a write in flight."""
    early = {"content_type": content_type, "metadata": metadata}
    return len(json.dumps(early, ensure_ascii=True, separators=(",", ":"))) + (
        LATE_FIELDS_ALLOWANCE
    )


def header_block(doc: bytes, header_len: int) -> bytes:
    """What precedes the data: magic, header_len, then doc (an encode_header
    result, or b"" for a placeholder) padded with spaces to header_len."""
    if len(doc) > header_len:
        # A bug, not bad input: the interceptor logs it and answers INTERNAL.
        raise RuntimeError("local backend: header outgrew its reservation")
    return MAGIC + header_len.to_bytes(4, "big") + doc + b" " * (header_len - len(doc))


def read_header(fd: int, key: str, path: str) -> Header:
    head = pread_exact(fd, _HEADER_PROBE, 0)
    if len(head) < PREFIX_LEN or head[: len(MAGIC)] != MAGIC:
        raise invalid_object_file(path, "bad magic")
    length = int.from_bytes(head[len(MAGIC) : PREFIX_LEN], "big")
    if length > _MAX_HEADER:
        raise invalid_object_file(path, f"header length {length}")
    data_offset = PREFIX_LEN + length
    raw = head[PREFIX_LEN:data_offset]
    if len(raw) < length:
        raw += pread_exact(fd, length - len(raw), len(head))
    if len(raw) < length:
        raise invalid_object_file(path, "truncated header")
    try:
        doc = json.loads(raw)
        sha256 = doc.get("sha256")
        if not isinstance(sha256, str):
            raise ValueError("no sha256")
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
            sha256=bytes.fromhex(sha256) if sha256 else None,
        )
        _check_meta(meta)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise invalid_object_file(path, f"bad header ({error})") from None
    # Checked by every reader, metadata only or not, so that all agree.
    if os.fstat(fd).st_size < data_offset + meta.size:
        raise invalid_object_file(path, "shorter than its header says")
    return Header(meta, data_offset)


def _check_meta(meta: ObjectMeta) -> None:
    """Raise ValueError for a header no commit writes (see encode_header)."""
    # No sha256 (written as ""): the bucket computes it only on request.
    if meta.size < 0 or (meta.sha256 is not None and len(meta.sha256) != 32):
        raise ValueError("size or sha256 out of range")
    # Lone surrogates (from JSON escapes) cannot be sent: encode raises ValueError.
    meta.content_type.encode()
    meta.etag.encode()
    for name, value in meta.metadata.items():
        name.encode()
        value.encode()


def read_current(path: str, key: str) -> ObjectMeta | None:
    """The metadata of the object file at path, None when there is none (or
    the file is not an object file: see NotAnObjectFile)."""
    fd = open_object(path)
    if fd is None:
        return None
    try:
        if not is_regular(fd):
            return None
        return read_header(fd, key, path).meta
    except NotAnObjectFile as problem:
        _report(problem)
        return None
    finally:
        os.close(fd)


def open_with_header(path: str, key: str) -> tuple[int, Header] | None:
    """A read-only fd on the object file at path and its header, checked to
    hold all the data the header announces; None when there is no object
    (or the file is not an object file: see NotAnObjectFile)."""
    fd = open_object(path)
    if fd is None:
        return None
    try:
        if not is_regular(fd):
            os.close(fd)
            return None
        header = read_header(fd, key, path)
    except NotAnObjectFile as problem:
        os.close(fd)
        _report(problem)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd, header

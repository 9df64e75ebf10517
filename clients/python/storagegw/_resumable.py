"""Resumable transfers: the state their flows keep (no I/O to the gateway
here; the retry-and-resume loops are in _flows.py).

Uploads: a resumable upload is a StartUpload, then Put streams that each
continue it from the gateway's persisted size (QueryUpload). SegmentStream
builds one such stream from a seekable source; an ObjectDigest computes the
whole object's CRC32C (and SHA-256, with verify_sha256) while the file is read, exactly once per
byte however often a part is re-sent, so the last message can carry them
(the gateway refuses to commit other bytes) and the stored object is checked
against them at the end.

Downloads: DownloadResume tracks the verified offset and the whole-object
checksums across Get streams (each stream's verifier counts the chunks it
checks in them, so every byte is hashed once); a resumed Get starts at that offset with
if_generation_match set to the generation first seen, so a replaced object
fails with PreconditionFailed instead of being spliced.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from storagegw import _common, _files
from storagegw._common import BinaryReader
from storagegw._crc32c import crc32c, crc32c_combine
from storagegw._digests import ObjectDigest, check_stored
from storagegw._parts import Continuation
from storagegw._types import ByteRange, ObjectInfo, UploadStatus
from storagegw._wire import PutMessage, encode_put_chunk
from storagegw.errors import Internal
from storagegw.v1 import storage_pb2

__all__ = [
    "ABORT_TIMEOUT",
    "DEFAULT_PARALLEL_STREAMS",
    "DEFAULT_PARALLEL_THRESHOLD",
    "DEFAULT_RESUMABLE_THRESHOLD",
    "DownloadResume",
    "ParallelDownload",
    "SegmentStream",
    "UploadSource",
    "check_ranges",
    "fresh_status",
    "open_upload_source",
    "wants_resumable",
]

# put_file(resumable=None) uploads resumably from this size up, as
# google-cloud-storage's upload_from_filename does above 8 MiB.
DEFAULT_RESUMABLE_THRESHOLD = 8 * 1024 * 1024

Progress = Callable[[int], None]
# AbortUpload after a failure waits at most this long (it is only a courtesy:
# an upload left behind expires and is cleaned up).
ABORT_TIMEOUT = 10.0


def fresh_status(upload_id: str) -> UploadStatus:
    """The status of an upload just started: nothing persisted. Its first
    stream starts at 0 without a QueryUpload (a round trip saved, and on a
    GCS emulator that completes a session when asked for its status, the
    gateway never asks)."""
    return UploadStatus(upload_id=upload_id, persisted_size=0, complete=False)


class UploadSource:
    """A seekable upload source, read from any offset, digested as read
    (its SHA-256 too with sha256=True, to have the gateway check it)."""

    def __init__(
        self, file: BinaryIO | BinaryReader, chunk_size: int, *, sha256: bool = False
    ) -> None:
        self.file = file
        self.chunk_size = chunk_size
        self.digest = ObjectDigest(sha256=sha256)
        self._base = cast(BinaryIO, file).tell()

    @staticmethod
    def resumable(source: object) -> bool:
        """Whether `source` (not a path) can be re-read from an offset."""
        if isinstance(source, bytes | bytearray | memoryview):
            return True
        seekable = getattr(source, "seekable", None)
        return hasattr(source, "read") and callable(seekable) and bool(seekable())

    @staticmethod
    def wrap(source: object) -> BinaryReader:
        if isinstance(source, bytes | bytearray | memoryview):
            return io.BytesIO(bytes(source))
        return cast(BinaryReader, source)

    def digest_all(self) -> None:
        """Read the rest of the source into the digest (nothing is sent)."""
        for offset, block in self.blocks(self.digest.size):
            self.digest.update(offset, block)

    def blocks(self, offset: int) -> Iterator[tuple[int, bytes]]:
        """(offset, block) from `offset` to the end; bytes before `offset`
        not yet digested are read (and not sent) first."""
        file = cast(BinaryIO, self.file)
        if self.digest.size < offset:
            file.seek(self._base + self.digest.size)
            while self.digest.size < offset:
                want = min(self.chunk_size, offset - self.digest.size)
                block = _files.read_block(file, want)
                if not block:
                    raise ValueError(
                        f"the source has {self.digest.size} bytes, fewer than the "
                        f"{offset} the gateway holds for this upload"
                    )
                self.digest.update(self.digest.size, block)
        file.seek(self._base + offset)
        while block := _files.read_block(file, self.chunk_size):
            yield offset, block
            offset += len(block)


class SegmentStream(Continuation):
    """One Put stream continuing an upload from `offset` to the end.

    Has PutStream's interface (start, feed, finish, size, object_info), so
    the clients' Put plumbing sends it unchanged.
    """

    def __init__(self, upload_id: str, offset: int, source: UploadSource) -> None:
        super().__init__(upload_id, offset)
        self.source = source

    def feed(self, block: bytes) -> list[PutMessage]:
        requests: list[PutMessage] = []
        for start in range(0, len(block), self.source.chunk_size):
            piece = block[start : start + self.source.chunk_size]
            piece_crc = crc32c(piece)
            self.source.digest.update(self.position, piece, piece_crc)
            requests.append(encode_put_chunk(self.position, piece, piece_crc))
            self.position += len(piece)
        return requests

    def finish(self) -> storage_pb2.PutRequest:
        return storage_pb2.PutRequest(
            write_offset=self.position,
            object_checksums=self.source.digest.checksums(),
            finish_write=True,
        )

    def object_info(self, response: storage_pb2.PutResponse) -> ObjectInfo:
        if not response.HasField("object"):
            raise Internal(
                f"the gateway did not commit upload {self.upload_id} "
                f"({response.persisted_size} bytes persisted)"
            )
        info = ObjectInfo.from_proto(response.object)
        return self.source.digest.check(info, "upload verification failed")


# ---------------------------------------------------------------- downloads


@dataclass
class DownloadResume:
    """One Get range's position and checksums across the Get streams that
    read it: the whole object (a plain download), or bytes [start, end) of
    one (a range of a parallel download, see ParallelDownload).

    `info` is the object first seen; every Get after the first is pinned to
    its generation (see conditions), so that bytes of a replaced object are
    never spliced in. Each stream's verifier counts the chunks it checks in
    `digest`, so every byte is checksummed once however often it resumes.
    """

    key: str
    start: int = 0
    end: int | None = None  # None: to the object's end
    info: ObjectInfo | None = None
    sha256: bool = False  # hash the bytes too (verify_sha256)

    def __post_init__(self) -> None:
        self.verified = self.start
        self.digest = ObjectDigest(sha256=self.sha256, origin=self.start)

    def conditions(
        self, first: storage_pb2.Preconditions | None
    ) -> storage_pb2.Preconditions | None:
        """The first Get's conditions; then the object first seen, exactly."""
        if self.info is None:
            return first
        if self.info.generation:
            return _common.preconditions(if_generation_match=self.info.generation)
        return _common.preconditions(if_match=self.info.etag)

    @property
    def stop(self) -> int | None:
        """Where the range ends, once known (None: the object's end, unknown yet)."""
        if self.info is None:
            return self.end
        return self.info.size if self.end is None else min(self.end, self.info.size)

    @property
    def limit(self) -> int | None:
        """The read_limit of the next Get: the bytes still missing (None: all)."""
        stop = self.stop
        return None if stop is None else stop - self.verified

    @property
    def complete(self) -> bool:
        stop = self.stop
        return self.info is not None and stop is not None and self.verified >= stop

    def started(self, info: ObjectInfo, content_range: ByteRange) -> None:
        """A Get stream began, serving `content_range` of `info`."""
        if self.info is None:
            self.info = info
        stop = self.stop
        if content_range.start != self.verified or (stop is not None and content_range.end > stop):
            raise Internal(
                f"the gateway answered the Get of {self.key!r} for bytes {self.verified} "
                f"to {stop} with bytes {content_range.start} to {content_range.end}"
            )

    def accept(self, size: int) -> None:
        """`size` more bytes are written; the Get streams' verifiers have
        already counted them in `digest` (see OpenRead)."""
        self.verified += size

    def finish(self) -> ObjectInfo:
        assert self.info is not None
        return self.digest.check(self.info, f"download of {self.key!r} corrupted")


# download_file reads an object larger than this in parallel ranges.
DEFAULT_PARALLEL_THRESHOLD = 64 * 1024 * 1024
# ... this many at once.
DEFAULT_PARALLEL_STREAMS = 4


@dataclass(frozen=True)
class ParallelDownload:
    """How download_file splits a large object into ranges read at once.

    The first Get asks for the first `threshold` bytes: an object no larger
    comes whole in that one stream (and is checked as a plain download is,
    CRC32C and SHA-256); a larger one is read as that first range plus
    `streams` equal ranges of the rest, each its own Get pinned to the
    generation the first saw, each resumed on its own from its verified
    offset. The whole object's CRC32C is combined from the ranges'; its
    SHA-256 is not checked, since hashes of ranges cannot be combined (see
    the README). streams <= 1 or threshold None: one stream, as before.
    """

    threshold: int | None = DEFAULT_PARALLEL_THRESHOLD
    streams: int = DEFAULT_PARALLEL_STREAMS

    def __post_init__(self) -> None:
        if self.threshold is not None and self.threshold < 1:
            raise ValueError("parallel_threshold must be at least 1 byte (None: never)")
        if self.streams < 1:
            raise ValueError("parallel must be at least 1")

    @property
    def enabled(self) -> bool:
        return self.threshold is not None and self.streams > 1

    def first_range(self, key: str, *, sha256: bool = False) -> DownloadResume:
        """The range the first Get reads; with sha256 (verify_sha256) the
        whole object, hashed as it arrives: the hashes of ranges cannot be
        combined, so there are no others."""
        end = self.threshold if self.enabled and not sha256 else None
        return DownloadResume(key, end=end, sha256=sha256)

    def rest(self, first: DownloadResume) -> list[DownloadResume]:
        """The ranges after `first` (none when `first` holds the whole object)."""
        assert first.info is not None
        start, size = first.stop, first.info.size
        assert start is not None
        if start >= size:
            return []
        count = min(self.streams, size - start)
        step, extra = divmod(size - start, count)
        ranges = []
        for index in range(count):
            end = start + step + (1 if index < extra else 0)
            ranges.append(DownloadResume(first.key, start, end, first.info, sha256=False))
            start = end
        return ranges


def check_ranges(info: ObjectInfo, ranges: list[DownloadResume], what: str) -> ObjectInfo:
    """`info` if the ranges, in order, are the whole object with its CRC32C."""
    crc, size = 0, 0
    for part in ranges:
        if part.digest.origin != size:
            raise Internal(f"{what}: range at {part.digest.origin} follows {size} bytes")
        crc = crc32c_combine(crc, part.digest.crc32c, part.digest.size)
        size += part.digest.size
    return check_stored(info, size, crc, None, what, sha256_checked=False)


# ---------------------------------------------------------------- put_file


def open_upload_source(
    source: object,
    chunk_size: int,
    content_type: str | None,
    size: int | None,
    sha256: bool = False,
) -> tuple[UploadSource, BinaryIO | None, str | None, int | None]:
    """(source, the file to close if opened here, content type, size);
    sha256: the source's SHA-256 is computed too (see UploadSource)."""
    path = _common.source_path(source)
    if path is not None:
        file, content_type, size = _files.open_path(path, content_type, size)
        return UploadSource(file, chunk_size, sha256=sha256), file, content_type, size
    if not UploadSource.resumable(source):
        raise ValueError("a resumable upload needs a path, bytes or a seekable binary file")
    if size is None and isinstance(source, bytes | bytearray | memoryview):
        size = len(source)
    upload = UploadSource(UploadSource.wrap(source), chunk_size, sha256=sha256)
    return upload, None, content_type, size


def wants_resumable(
    resumable: bool | None, source: object, size: int | None, threshold: int
) -> bool:
    """put_file's choice: as asked, else resumable for a re-readable source
    (a path or a seekable file) of `threshold` bytes or more."""
    if resumable is not None:
        return resumable
    path = _common.source_path(source)
    if path is not None:
        try:
            size = os.stat(path).st_size if size is None else size
        except OSError:
            return False  # let the plain path report the error
    elif not UploadSource.resumable(source) or isinstance(source, bytes | bytearray):
        return False
    elif size is None:
        file = cast(BinaryIO, source)
        try:
            position = file.tell()
            size = file.seek(0, os.SEEK_END) - position
            file.seek(position)
        except (OSError, ValueError):
            return False
    return size is not None and size >= threshold

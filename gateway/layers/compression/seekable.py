"""The stored form of a compressed object: zstd's seekable format.

    frame 0 .. frame N-1    independent zstd frames, each of at most the
                            bucket's frame size of original bytes
    original frame          a skippable frame (magic 0x184D2A57) holding the
                            original object's size and checksums
    seek table              the seekable format's skippable frame (magic
                            0x184D2A5E): per frame its compressed and original
                            size, then the footer (frame count, descriptor,
                            magic 0x8F92EAB1)

as zstd's contrib/seekable_format specifies it, so `zstd -d` (which skips
skippable frames) gives back the original bytes, and a range maps to the frames
that hold it. Everything here is pure and blocking (callers run the CPU-heavy
parts in worker threads).
"""

from __future__ import annotations

import bisect
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from gateway.domain.checksums import crc32c

SKIPPABLE_HEADER = struct.Struct("<II")  # magic, payload size
SEEK_TABLE_MAGIC = 0x184D2A5E
ORIGINAL_MAGIC = 0x184D2A57
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER = struct.Struct("<IBI")  # frame count, descriptor, seekable magic
ENTRY = struct.Struct("<II")  # compressed size, original size (no checksum: flag clear)
# The original frame's payload: a tag, original size, crc32c, whether a
# SHA-256 follows, the SHA-256 (zeros when not computed).
ORIGINAL = struct.Struct("<4sQIB32s")
ORIGINAL_TAG = b"SGWZ"
ORIGINAL_FRAME_SIZE = SKIPPABLE_HEADER.size + ORIGINAL.size
# The spec's bound on a seekable object's frame count.
MAX_FRAMES = 0x8000000


class DamagedObject(Exception):
    """The stored bytes are not a seekable object this layer wrote."""


@dataclass(frozen=True, slots=True)
class Original:
    """What the original object was: its size and checksums."""

    size: int
    crc32c: int
    sha256: bytes | None


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: where it is stored and which original bytes it holds."""

    stored_offset: int
    stored_size: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Layout:
    """A compressed object's frames and original."""

    frames: tuple[Frame, ...]
    original: Original

    def covering(self, start: int, end: int) -> Sequence[Frame]:
        """The frames holding original bytes [start, end), in order."""
        if start >= end:
            return ()
        frames = self.frames
        first = max(bisect.bisect_right(frames, start, key=_offset) - 1, 0)
        last = bisect.bisect_left(frames, end, key=_offset)
        return frames[first:last]


def frames_of(sizes: Sequence[tuple[int, int]]) -> tuple[Frame, ...]:
    """The frames stored one after the other, from each one's (stored size,
    original size)."""
    frames = []
    stored_offset = offset = 0
    for stored, size in sizes:
        frames.append(Frame(stored_offset, stored, offset, size))
        stored_offset += stored
        offset += size
    return tuple(frames)


def _offset(frame: Frame) -> int:
    return frame.offset


@dataclass(frozen=True, slots=True)
class CompressedFrame:
    """A frame as the writer stores it, with the CRC32C of its stored bytes."""

    data: bytes
    original_size: int
    crc32c: int


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # A compressor context is not safe to share between threads: one per thread and level.
    compressors: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if compressors is None:
        compressors = _local.compressors = {}
    if level not in compressors:
        compressors[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
    return compressors[level]


def compress_frame(data: bytes, level: int) -> CompressedFrame:
    """One independent frame of data (blocking: a worker thread's work)."""
    stored = _compressor(level).compress(data)
    return CompressedFrame(stored, len(data), crc32c(stored))


# A frame of stored (uncompressed) blocks: the frame header with its content
# size (single segment, no checksum), then blocks of at most 128 KiB each.
FRAME_MAGIC = 0xFD2FB528
STORED_FRAME_HEADER = struct.Struct("<IBQ")  # magic, descriptor, content size
STORED_DESCRIPTOR = 0xE0  # an 8-byte content size, single segment
MAX_BLOCK = 128 * 1024


def store_frame(data: bytes) -> CompressedFrame:
    """One independent frame holding data as it is, in zstd's raw blocks
    (blocking): what a frame of bytes that do not compress is stored as
    where the object is marked compressed already (a resumable upload)."""
    parts = [STORED_FRAME_HEADER.pack(FRAME_MAGIC, STORED_DESCRIPTOR, len(data))]
    view = memoryview(data)
    at = 0
    while True:
        block = view[at : at + MAX_BLOCK]
        at += len(block)
        last = at >= len(data)
        header = (len(block) << 3) | int(last)  # block type 0: raw
        parts.append(header.to_bytes(3, "little"))
        parts.append(bytes(block))
        if last:
            break
    stored = b"".join(parts)
    return CompressedFrame(stored, len(data), crc32c(stored))


def decompress_frame(stored: bytes, original_size: int) -> bytes:
    """A frame's original bytes (blocking); DamagedObject if they are not."""
    try:
        data = zstandard.ZstdDecompressor().decompress(stored, max_output_size=original_size)
    except zstandard.ZstdError as error:
        raise DamagedObject(f"a frame does not decompress: {error}") from None
    if len(data) != original_size:
        raise DamagedObject("a frame holds another size than its seek table entry says")
    return data


def tail(original: Original, frames: Sequence[tuple[int, int]]) -> bytes:
    """The original frame and the seek table that end the stored object;
    frames: each frame's (stored size, original size)."""
    payload = ORIGINAL.pack(
        ORIGINAL_TAG,
        original.size,
        original.crc32c,
        original.sha256 is not None,
        original.sha256 or bytes(32),
    )
    entries = b"".join(ENTRY.pack(stored, size) for stored, size in frames)
    footer = FOOTER.pack(len(frames), 0, SEEKABLE_MAGIC)
    return (
        SKIPPABLE_HEADER.pack(ORIGINAL_MAGIC, len(payload))
        + payload
        + SKIPPABLE_HEADER.pack(SEEK_TABLE_MAGIC, len(entries) + len(footer))
        + entries
        + footer
    )


def tail_size(frame_count: int) -> int:
    """The size of the tail ending an object of frame_count frames."""
    return ORIGINAL_FRAME_SIZE + SKIPPABLE_HEADER.size + frame_count * ENTRY.size + FOOTER.size


def frame_count(last_bytes: bytes) -> int:
    """The frame count the footer (the object's last 9 bytes) gives."""
    if len(last_bytes) < FOOTER.size:
        raise DamagedObject("too short for a seek table")
    count, descriptor, magic = FOOTER.unpack(last_bytes[-FOOTER.size :])
    if magic != SEEKABLE_MAGIC or descriptor & 0x7C or count > MAX_FRAMES:
        raise DamagedObject("no seek table at its end")
    if descriptor & 0x80:
        raise DamagedObject("a seek table with checksums, which this layer does not write")
    return int(count)


def parse_tail(stored_size: int, last_bytes: bytes) -> Layout:
    """The layout of a stored object of stored_size bytes from its last
    bytes (at least tail_size(frame_count(...)) of them)."""
    count = frame_count(last_bytes)
    size = tail_size(count)
    if len(last_bytes) < size or stored_size < size:
        raise DamagedObject("shorter than its seek table says")
    view = memoryview(last_bytes)[len(last_bytes) - size :]
    magic, payload_size = SKIPPABLE_HEADER.unpack_from(view, 0)
    tag, original_size, crc, has_sha256, sha256 = ORIGINAL.unpack_from(view, SKIPPABLE_HEADER.size)
    if magic != ORIGINAL_MAGIC or payload_size != ORIGINAL.size or tag != ORIGINAL_TAG:
        raise DamagedObject("no original frame before its seek table")
    table_at = ORIGINAL_FRAME_SIZE
    magic, table_size = SKIPPABLE_HEADER.unpack_from(view, table_at)
    if magic != SEEK_TABLE_MAGIC or table_size != count * ENTRY.size + FOOTER.size:
        raise DamagedObject("a seek table of the wrong size")
    frames = []
    stored_offset = offset = 0
    for index in range(count):
        stored, original = ENTRY.unpack_from(view, table_at + SKIPPABLE_HEADER.size + index * 8)
        frames.append(Frame(stored_offset, stored, offset, original))
        stored_offset += stored
        offset += original
    if stored_offset + size != stored_size or offset != original_size:
        raise DamagedObject("its seek table does not add up")
    return Layout(tuple(frames), Original(original_size, crc, sha256 if has_sha256 else None))

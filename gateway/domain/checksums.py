"""CRC32C and SHA-256, computed while bytes stream through."""

from __future__ import annotations

import hashlib
from typing import Protocol

import google_crc32c

from gateway.domain.crc32c_combine import crc32c_combine

# From this size on, combining a chunk's CRC32C (already checked against the
# one sent with it) into the whole object's costs less than a second pass
# over its bytes; below it, extending over the bytes again is cheaper.
COMBINE_FROM = 64 * 1024


def crc32c(data: bytes | memoryview) -> int:
    return int(google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data))


class Sha256(Protocol):
    """hashlib's SHA-256, or gateway.core.resumable_hash's that can be saved."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class StreamChecksums:
    """Running whole-object CRC32C and SHA-256 plus the byte count.

    update() is called from a worker thread for large chunks: hashlib releases
    the GIL while hashing, so the event loop keeps serving other calls.
    """

    __slots__ = ("_crc", "_sha", "size")

    def __init__(self, size: int = 0, crc: int = 0, sha: Sha256 | None = None) -> None:
        self._crc = crc
        self._sha: Sha256 = sha or hashlib.sha256()
        self.size = size

    def update(self, data: bytes, crc32c: int | None = None) -> None:
        """Account for data; crc32c, when given, is its own CRC32C, known
        already (the chunk was checked against it)."""
        if crc32c is not None and len(data) >= COMBINE_FROM:
            self._crc = crc32c_combine(self._crc, crc32c, len(data))
        else:
            self._crc = google_crc32c.extend(self._crc, data)
        self._sha.update(data)
        self.size += len(data)

    @property
    def crc32c(self) -> int:
        return int(self._crc)

    @property
    def sha256(self) -> bytes:
        return self._sha.digest()

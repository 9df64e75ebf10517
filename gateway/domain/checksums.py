"""CRC32C and SHA-256, computed while bytes stream through, and the
bucket setting that says when the gateway computes the SHA-256."""

from __future__ import annotations

import enum
import hashlib
import secrets
from typing import Protocol

import google_crc32c

from gateway.domain.crc32c_combine import crc32c_combine

# From this size on, combining a chunk's CRC32C (already checked against the
# one sent with it) into the whole object's costs less than a second pass
# over its bytes; below it, extending over the bytes again is cheaper.
COMBINE_FROM = 64 * 1024


def crc32c(data: bytes | memoryview) -> int:
    return int(google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data))


class Sha256Choice(enum.StrEnum):
    """When the gateway computes (and stores) an object's SHA-256, per bucket.

    CRC32C is checked per chunk and per object whatever the choice; SHA-256
    is the object's content identity, kept for those who want it.
    """

    # For every object written to the bucket.
    ALWAYS = "always"
    # Only when the write asks for it (PutSpec.compute_sha256) or promises one
    # to check it against (expected_checksums.sha256), as S3's additional
    # checksums are asked for per request.
    ON_REQUEST = "on_request"


DEFAULT_SHA256_CHOICE = Sha256Choice.ALWAYS


def etag_of(sha256: bytes | None) -> str:
    """The etag of a new object, for a driver whose store makes none: the
    first 128 bits of its SHA-256, or without one 128 random bits (an etag
    must change whenever the content does; without a content hash, only a
    new one for every write ensures that)."""
    return sha256.hex()[:32] if sha256 is not None else secrets.token_hex(16)


class Sha256(Protocol):
    """hashlib's SHA-256, or gateway.core.resumable_hash's that can be saved."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class StreamChecksums:
    """Running whole-object CRC32C, SHA-256 (unless with_sha256 is False)
    plus the byte count.

    update() is called from a worker thread for large chunks: hashlib releases
    the GIL while hashing, so the event loop keeps serving other calls.
    """

    __slots__ = ("_crc", "_sha", "size")

    def __init__(
        self,
        size: int = 0,
        crc: int = 0,
        sha: Sha256 | None = None,
        *,
        with_sha256: bool = True,
    ) -> None:
        self._crc = crc
        self._sha: Sha256 | None = sha or (hashlib.sha256() if with_sha256 else None)
        self.size = size

    def update(self, data: bytes, crc32c: int | None = None) -> None:
        """Account for data; crc32c, when given, is its own CRC32C, known
        already (the chunk was checked against it)."""
        if crc32c is not None and len(data) >= COMBINE_FROM:
            self._crc = crc32c_combine(self._crc, crc32c, len(data))
        else:
            self._crc = google_crc32c.extend(self._crc, data)
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)

    @property
    def crc32c(self) -> int:
        return int(self._crc)

    @property
    def sha256(self) -> bytes | None:
        """The SHA-256 so far; None when it is not computed."""
        return None if self._sha is None else self._sha.digest()

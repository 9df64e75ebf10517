"""Whole-object checksums on the client: computed once per byte, checked
against what the gateway reports (no I/O here).

ObjectDigest is fed each chunk with the CRC32C already computed for it (to
send it, or to check it on arrival), so the whole-object CRC32C is combined
from the chunks' and no byte is read twice for it; SHA-256, when kept, reads
each byte once. Uploads and downloads, plain and resumable, all keep one; an
upload keeps the SHA-256 only when asked to verify it (verify_sha256), since
the gateway computes the one it stores from bytes the CRC32C vouches for.
"""

from __future__ import annotations

import hashlib

from storagegw._crc32c import Buffer, Crc32cAccumulator, crc32c
from storagegw._types import ObjectInfo
from storagegw.errors import ChecksumMismatch, SizeMismatch
from storagegw.v1 import storage_pb2

__all__ = ["ObjectDigest", "check_stored"]


class ObjectDigest:
    """The whole object's CRC32C and SHA-256, fed bytes at their offsets.

    Bytes below `size` were already counted and are skipped, so a re-sent
    or re-received range is hashed once; a gap would be a bug, and raises.
    With sha256=False only the CRC32C is kept (an object the gateway reports
    no SHA-256 for: there is nothing to compare it with). `origin` is where
    the digested bytes start in the object: one range of a parallel download
    (see _resumable.ParallelDownload) keeps its own CRC32C, and the ranges'
    are combined.
    """

    def __init__(self, *, sha256: bool = True, origin: int = 0) -> None:
        self._crc = Crc32cAccumulator()
        self._sha256 = hashlib.sha256() if sha256 else None
        self.origin = origin

    @property
    def size(self) -> int:
        """Bytes counted so far."""
        return self._crc.size

    @property
    def end(self) -> int:
        """The object offset the next byte counted must have."""
        return self.origin + self._crc.size

    def drop_sha256(self) -> None:
        """Keep only the CRC32C from now on (the bytes go to parallel ranges,
        whose SHA-256 cannot be combined)."""
        self._sha256 = None

    @property
    def crc32c(self) -> int:
        return self._crc.value

    @property
    def sha256(self) -> bytes | None:
        return self._sha256.digest() if self._sha256 is not None else None

    def checksums(self) -> storage_pb2.ObjectChecksums:
        """The checksums for a Put stream's last message."""
        checksums = storage_pb2.ObjectChecksums(crc32c=self.crc32c)
        if self._sha256 is not None:
            checksums.sha256 = self._sha256.digest()
        return checksums

    def update(self, offset: int, data: Buffer, data_crc: int | None = None) -> None:
        """Count `data`, found at `offset`; `data_crc` is its CRC32C if known."""
        end = offset + len(data)
        if end <= self.end:
            return
        if offset > self.end:
            raise RuntimeError(f"checksum gap: bytes {self.end}..{offset} were never read")
        if offset < self.end:
            data, data_crc = memoryview(data)[self.end - offset :], None
        self._crc.add_checked(data, crc32c(data) if data_crc is None else data_crc)
        if self._sha256 is not None:
            self._sha256.update(data)

    def check(self, info: ObjectInfo, what: str) -> ObjectInfo:
        """`info` if the stored object has exactly these bytes, else raise.
        Without a SHA-256 of its own, the gateway's is taken as it is: the
        whole object's CRC32C, checked here, vouches for the bytes it hashed."""
        sha256 = self.sha256 if self._sha256 is not None else info.sha256
        return check_stored(info, self.size, self.crc32c, sha256, what)


def check_stored(
    info: ObjectInfo,
    size: int,
    crc: int,
    sha256: bytes | None,
    what: str,
    *,
    sha256_checked: bool = True,
) -> ObjectInfo:
    """`info` if the stored object has the data's size and the data's
    checksums (those the gateway reports), else raise SizeMismatch or
    ChecksumMismatch, with `what` failed. A SHA-256 the gateway reports is
    compared even when the data's was not computed (None), and then fails,
    unless sha256_checked=False (a parallel download: by choice, see
    _resumable.ParallelDownload)."""
    context = {"key": info.key, "side": "client"}
    if info.size != size:
        raise SizeMismatch(
            f"{what}: the gateway stored {info.size} bytes for {info.key!r}, the data has {size}",
            reason="SIZE_MISMATCH",
            metadata=context,
        )
    digests: list[tuple[str, int | bytes | None, int | bytes | None]] = [
        ("crc32c", info.crc32c, crc),
    ]
    if sha256_checked:
        digests.append(("sha256", info.sha256, sha256))
    for name, stored, computed in digests:
        if stored is not None and stored != computed:
            raise ChecksumMismatch(
                f"{what}: the gateway stored {info.key!r} with {name} {_hex(stored)}, "
                f"the data has {_hex(computed)}",
                reason="CHECKSUM_MISMATCH",
                metadata=context,
            )
    return info


def _hex(digest: int | bytes | None) -> str:
    if digest is None:
        return "none (not computed)"
    return f"{digest:08x}" if isinstance(digest, int) else digest.hex()

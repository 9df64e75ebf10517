"""The gateway's own entries in a remote object's user metadata (S3's
x-amz-meta-*, GCS's custom metadata): the whole-object checksums it stores
beside the object, under names starting sgw-, which are stripped from the
metadata handed back to callers."""

from __future__ import annotations

from collections.abc import Mapping

META_CRC32C = "sgw-crc32c"  # 8 lower-case hex digits
META_SHA256 = "sgw-sha256"  # 64 lower-case hex digits
RESERVED_PREFIX = "sgw-"


def checksum_entries(crc32c: int | None, sha256: bytes | None) -> dict[str, str]:
    """The metadata entries carrying the checksums that are known."""
    entries: dict[str, str] = {}
    if crc32c is not None:
        entries[META_CRC32C] = f"{crc32c:08x}"
    if sha256 is not None:
        entries[META_SHA256] = sha256.hex()
    return entries


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The caller's metadata, without the reserved sgw-* entries."""
    return {k: v for k, v in metadata.items() if not k.lower().startswith(RESERVED_PREFIX)}

"""Where a dedup bucket keeps what is not a user's object, and what a
reference says.

    .cas/<sha[:2]>/<sha>   a blob: the bytes of every object with that SHA-256
    .cas/live/<sha>        its marker: touched by every write that reuses the
                           blob, condemned by the garbage collector (blobs.py)
    .cas/tmp/<random>      a write's bytes before their SHA-256 is known

A user's key holds a reference: a small object whose body names the blob
(so that its ETag changes with the content) and whose metadata carries the
pointer too (POINTER), with the object's own content type and metadata, so
that a Head is one call to the store.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass

from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import ObjectMeta

RESERVED_PREFIX = ".cas/"
TEMP_PREFIX = ".cas/tmp/"
MARKER_PREFIX = ".cas/live/"
# Sorts after every key the layer makes under RESERVED_PREFIX (all ASCII):
# a listing resumes past them from here.
PAST_RESERVED = ".cas/\x7f"
# The reference's metadata entry naming its blob: "v1 <sha256 hex> <size> <crc32c>".
POINTER = "storagegw-dedup"


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIX)


def refuse_reserved(key: str) -> None:
    """INVALID_KEY for a user's key under the layer's own prefix."""
    if is_reserved(key):
        raise GatewayError(
            Reason.INVALID_KEY,
            f"keys under {RESERVED_PREFIX!r} are reserved for a dedup bucket's stored bytes",
            key=key,
        )


def blob_key(sha256: bytes) -> str:
    digest = sha256.hex()
    return f"{RESERVED_PREFIX}{digest[:2]}/{digest}"


def marker_key(sha256: bytes) -> str:
    return MARKER_PREFIX + sha256.hex()


def temp_key() -> str:
    return TEMP_PREFIX + secrets.token_hex(16)


def blob_digest(key: str) -> bytes | None:
    """The SHA-256 a blob's key names; None: not a blob's key."""
    rest = key[len(RESERVED_PREFIX) :] if is_reserved(key) else ""
    head, _, digest = rest.partition("/")
    if len(digest) != 64 or head != digest[:2]:
        return None
    try:
        return bytes.fromhex(digest)
    except ValueError:
        return None


def marker_digest(key: str) -> bytes | None:
    if not key.startswith(MARKER_PREFIX):
        return None
    try:
        digest = bytes.fromhex(key[len(MARKER_PREFIX) :])
    except ValueError:
        return None
    return digest if len(digest) == 32 else None


@dataclass(frozen=True, slots=True)
class Pointer:
    """What a reference says of its object's bytes."""

    sha256: bytes
    size: int
    crc32c: int

    def encoded(self) -> str:
        return f"v1 {self.sha256.hex()} {self.size} {self.crc32c}"

    def body(self) -> bytes:
        """The reference's bytes: the pointer, so that two references share an
        ETag exactly when their objects share their bytes."""
        fields = {"sha256": self.sha256.hex(), "size": self.size, "crc32c": self.crc32c}
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def of(cls, meta: ObjectMeta) -> Pointer | None:
        """The pointer a stored object carries; None: not a reference (an
        object stored before the bucket deduplicated, served as it is)."""
        text = next((v for k, v in meta.metadata.items() if k.lower() == POINTER), None)
        if text is None:
            return None
        parts = text.split()
        try:
            if len(parts) == 4 and parts[0] == "v1" and len(parts[1]) == 64:
                return cls(bytes.fromhex(parts[1]), int(parts[2]), int(parts[3]))
        except ValueError:
            pass
        return None  # not one the layer wrote: served as the plain object it is


def user_metadata(meta: ObjectMeta) -> dict[str, str]:
    return {k: v for k, v in meta.metadata.items() if k.lower() != POINTER}


def presented(meta: ObjectMeta) -> ObjectMeta:
    """A reference as the object it stands for: its bytes' size and checksums,
    its own ETag, generation, times, content type and metadata."""
    pointer = Pointer.of(meta)
    if pointer is None:
        return meta
    return dataclasses.replace(
        meta,
        size=pointer.size,
        crc32c=pointer.crc32c,
        sha256=pointer.sha256,
        metadata=user_metadata(meta),
    )

"""Writing a reference: after a write's bytes are stored (settle), and for a
reference copy."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.backends.base import Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, ObjectMeta, WriteOptions
from gateway.layers.dedup.blobs import discard, put_small, secure, within
from gateway.layers.dedup.names import POINTER, Pointer, presented


def pointer_of(key: str, checksums: Checksums) -> Pointer:
    if checksums.sha256 is None:
        raise GatewayError(
            Reason.INVALID_ARGUMENT,
            "a dedup bucket stores an object by its SHA-256, which this write did not compute",
            key=key,
        )
    return Pointer(checksums.sha256, checksums.size, checksums.crc32c)


async def write_reference(
    inner: Backend,
    grace_s: float,
    key: str,
    pointer: Pointer,
    options: WriteOptions,
    touched: float,
) -> ObjectMeta:
    """Write key's reference to pointer's blob (secured at touched, by
    blobs.secure) with options' content type, metadata and conditions."""
    if not within(touched, grace_s) and await secure(inner, pointer.sha256, None) is None:
        raise GatewayError(
            Reason.OBJECT_NOT_FOUND,
            f"the content of {key!r} was deleted while it was written",
            key=key,
        )
    metadata = {k: v for k, v in options.metadata.items() if k.lower() != POINTER}
    metadata[POINTER] = pointer.encoded()
    stored = dataclasses.replace(options, metadata=metadata, size_hint=None, sha256_hint=None)
    return presented(await put_small(inner, key, pointer.body(), stored))


async def settle(
    inner: Backend, grace_s: float, key: str, pointer: Pointer, options: WriteOptions, temp: str
) -> ObjectMeta:
    """The temp object committed: make it (or the blob that holds its bytes
    already) the blob, and write key's reference to it."""
    try:
        touched = await secure(inner, pointer.sha256, temp, fresh_s=grace_s / 4)
    except BaseException:
        await asyncio.shield(discard(inner, temp))
        raise
    if touched is None:  # never, with bytes of its own
        raise GatewayError(Reason.BACKEND_UNAVAILABLE, "the object's bytes were lost", key=key)
    return await write_reference(inner, grace_s, key, pointer, options, touched)

"""The bound on an object's user metadata, the same for every write."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.domain.errors import invalid_argument

MAX_METADATA_BYTES = 8 * 1024


def checked_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """A copy of user metadata, refused when its keys and values together
    exceed MAX_METADATA_BYTES in UTF-8 (Put, StartUpload and Copy alike)."""
    copied = dict(metadata)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in copied.items())
    if size > MAX_METADATA_BYTES:
        raise invalid_argument(
            f"user metadata is {size} bytes; at most {MAX_METADATA_BYTES} are allowed",
            size=size,
            limit=MAX_METADATA_BYTES,
        )
    return copied

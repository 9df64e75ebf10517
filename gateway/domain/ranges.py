"""Resolution of a requested read range against an object's size."""

from __future__ import annotations

from gateway.domain.errors import invalid_range


def resolve(size: int, offset: int, limit: int | None) -> tuple[int, int]:
    """Return (start, end) with end exclusive.

    offset < 0 reads a suffix of -offset bytes (the whole object when longer,
    as HTTP does); offset > size is INVALID_RANGE; offset == size reads
    nothing, so an empty object can be read from offset 0. limit None reads to
    the end; a negative limit is rejected by the caller.
    """
    if offset < 0:
        start = max(0, size + offset)
    elif offset > size:
        raise invalid_range(offset=offset, size=size)
    else:
        start = offset
    end = size if limit is None else min(size, start + limit)
    return start, end

"""What a signed GET or HEAD answers with: the byte range asked for, and the
object's headers (each value made legal for HTTP, whatever a backend holds)."""

from __future__ import annotations

import re
from email.utils import formatdate
from urllib.parse import quote

from gateway.backends.base import Backend, ObjectReader
from gateway.core.signing import VerifiedRequest
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, NO_CONDITIONS, ObjectMeta
from gateway.http.limits import header_value, range_number

_RANGE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE)


def parse_range(header: str | None) -> tuple[int | None, int | None] | None:
    """One byte range as (first, last) with either possibly None ("a-": last
    None; "-n": first None); None for no header, a malformed one or several
    ranges, all of which mean "the whole object"."""
    if not header or "," in header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or not (match[1] or match[2]):
        return None
    first = range_number(match[1]) if match[1] else None
    last = range_number(match[2]) if match[2] else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


async def open_range(
    backend: Backend, key: str, wanted: tuple[int | None, int | None] | None
) -> tuple[ObjectReader | None, int]:
    """(reader, object size); reader None when the range is unsatisfiable."""
    if wanted is None:
        reader = await backend.open_read(key, 0, None, NO_CONDITIONS)
        return reader, reader.meta.size
    first, last = wanted
    if first is None:
        assert last is not None
        # "-0" is never satisfiable; open nothing just to learn the size.
        reader = await backend.open_read(
            key, -last if last else 0, None if last else 0, NO_CONDITIONS
        )
    else:
        try:
            limit = None if last is None else last - first + 1
            reader = await backend.open_read(key, first, limit, NO_CONDITIONS)
        except GatewayError as exc:
            if exc.reason != Reason.INVALID_RANGE:
                raise
            known = exc.metadata.get("size")
            return None, int(known) if known is not None else (await backend.head(key)).size
    size = reader.meta.size
    if reader.start >= size or (first is None and not last):
        await reader.close()
        return None, size
    return reader, size


def object_headers(meta: ObjectMeta, verified: VerifiedRequest) -> dict[str, str]:
    etag = meta.etag if meta.etag.startswith(('"', 'W/"')) else f'"{meta.etag}"'
    headers = {
        # What a backend holds may not be a legal header value (CR/LF): such
        # a value is replaced, never allowed to fail the answer.
        "Content-Type": header_value(meta.content_type, DEFAULT_CONTENT_TYPE)
        or DEFAULT_CONTENT_TYPE,
        "Last-Modified": formatdate(meta.update_time_ns / 1e9, usegmt=True),
        "Accept-Ranges": "bytes",
    }
    if header_value(etag, "") == etag:
        headers["ETag"] = etag
    if verified.download:
        headers["Content-Disposition"] = content_disposition(
            verified.filename or verified.key.rsplit("/", 1)[-1]
        )
    return headers


def content_disposition(filename: str) -> str:
    """attachment with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"

"""What a signed GET or HEAD asks for and answers with: the byte range of its
Range header, and the object's headers (each value made legal for HTTP,
whatever a backend holds)."""

from __future__ import annotations

import re
from email.utils import formatdate
from urllib.parse import quote

from gateway.core.objects import ByteRange
from gateway.core.signing import VerifiedRequest
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, ObjectMeta
from gateway.http.limits import header_value, range_number

_RANGE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE)


def parse_range(header: str | None) -> ByteRange | None:
    """One byte range, first or last possibly None ("a-": last None; "-n":
    first None); None for no header, a malformed one or several ranges, all
    of which mean "the whole object"."""
    if not header or "," in header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or not (match[1] or match[2]):
        return None
    first = range_number(match[1]) if match[1] else None
    last = range_number(match[2]) if match[2] else None
    if first is not None and last is not None and last < first:
        return None
    return ByteRange(first, last)


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

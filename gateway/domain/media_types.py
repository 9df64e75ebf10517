"""The one place that decides which content types are valid.

A content type comes in through Put and StartUpload specs, Copy, SignUrl and
the Content-Type of signed HTTP PUTs and POSTs; it goes out again as an HTTP
header and in every ObjectInfo of a List page. So it must be a header-safe
media type of bounded length: RFC 9110 section 8.3.1,

    media-type = type "/" subtype *( OWS ";" OWS [ parameter ] )
    parameter  = token "=" ( token / quoted-string )

with type, subtype and parameter names RFC 9110 tokens, quoted strings of
printable ASCII, space and tab, and at most MAX_CONTENT_TYPE_BYTES in all.
Only ASCII is accepted (RFC 9110's obs-text is obsolete), so no CR, LF or NUL
can ever reach a header. An empty content type means "not given".
"""

from __future__ import annotations

import re

from gateway.domain.errors import ErrorTemplate, GatewayError, Reason

MAX_CONTENT_TYPE_BYTES = 256

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_OWS = r"[ \t]*"
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:{_OWS};{_OWS}(?:{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))?)*{_OWS}"
)
_FORBIDDEN = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", "\x00": "a NUL"}


_invalid_content_type = ErrorTemplate(
    Reason.INVALID_CONTENT_TYPE,
    "invalid content_type {content_type!r}: {why}",
    metadata=("content_type", "max_bytes"),
    fixed={"max_bytes": MAX_CONTENT_TYPE_BYTES},
)


def _invalid(value: str, why: str) -> GatewayError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return _invalid_content_type(content_type=shown, why=why)


def validate_content_type(value: str) -> str:
    """Return value unchanged when it is empty or a valid media type of at most
    MAX_CONTENT_TYPE_BYTES bytes; else raise INVALID_CONTENT_TYPE."""
    if not value:
        return value
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise _invalid(value, f"contains {name}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_TYPE_BYTES:
        raise _invalid(value, f"{size} bytes long; at most {MAX_CONTENT_TYPE_BYTES} are allowed")
    if not value.isascii():
        raise _invalid(value, "contains a non-ASCII character")
    if not _MEDIA_TYPE.fullmatch(value):
        raise _invalid(
            value, 'not a media type such as "text/plain" or "text/plain; charset=utf-8"'
        )
    return value

"""The one place that decides which object keys, prefixes and bucket names are valid.

Every key and prefix a request carries passes through here before any driver
sees it, so a driver may map keys to paths without re-checking them.

Rules for keys (the README repeats them):
- valid UTF-8 (a Python str without lone surrogates), 1 to 1024 bytes encoded;
- in Unicode NFC. Keys are stored exactly as given and never normalized, so
  that what is listed is what was written; requiring NFC means two spellings
  of the same visible name (é as one code point or as e + accent) can never
  become two different objects, whatever the backend's filesystem does;
- no control character (C0, DEL, C1), hence no NUL;
- no backslash (a path separator on some systems);
- split on "/", no segment is empty, "." or "..": no leading "/", no "//",
  and (for objects) no trailing "/";
- the first segment is not ".storagegw": S3 and GCS keep the gateway's own
  records (resumable uploads) there, beside the objects, hidden from listings.
Prefixes follow the same rules, except that they may be empty and may end
with "/" (their last segment is incomplete, so only the segments before it
must be non-empty and not "." or "..").
"""

from __future__ import annotations

import re
import unicodedata

from gateway.domain.errors import GatewayError, Reason

MAX_KEY_BYTES = 1024
# The first segment of the keys the gateway keeps its own records under.
RESERVED_SEGMENT = ".storagegw"

# C0 controls, DEL, C1 controls, and the backslash.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")


def _invalid(what: str, value: str, why: str) -> GatewayError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return GatewayError(Reason.INVALID_KEY, f"invalid {what} {shown!r}: {why}", **{what: shown})


def _check_text(what: str, value: str) -> None:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(what, value, "not valid UTF-8 (lone surrogate)") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise _invalid(what, value, f"longer than {MAX_KEY_BYTES} bytes in UTF-8")
    bad = _FORBIDDEN.search(value)
    if bad:
        char = "backslash" if bad.group() == "\\" else f"control character U+{ord(bad.group()):04X}"
        raise _invalid(what, value, f"contains a {char}")
    if not unicodedata.is_normalized("NFC", value):
        raise _invalid(what, value, "not in Unicode NFC form; normalize it to NFC first")


def _check_segments(what: str, value: str, segments: list[str]) -> None:
    for segment in segments:
        if segment == "":
            raise _invalid(what, value, "empty path segment (leading, trailing or double '/')")
        if segment in (".", ".."):
            raise _invalid(what, value, f"'{segment}' path segment")


def validate_key(key: str) -> str:
    """Return key unchanged when it is a valid object key; else raise INVALID_KEY."""
    if not key:
        raise _invalid("key", key, "empty")
    _check_text("key", key)
    segments = key.split("/")
    _check_segments("key", key, segments)
    if segments[0] == RESERVED_SEGMENT:
        raise _invalid("key", key, f"'{RESERVED_SEGMENT}/' is reserved for the gateway's records")
    return key


def validate_prefix(prefix: str) -> str:
    """Return prefix unchanged when it is a valid listing prefix; else raise INVALID_KEY."""
    if not prefix:
        return prefix
    _check_text("prefix", prefix)
    # The last segment is incomplete ("a/." may still become "a/.x"), so only
    # the complete segments before the last "/" are checked.
    if "/" in prefix:
        _check_segments("prefix", prefix, prefix.rpartition("/")[0].split("/"))
    return prefix


def validate_bucket(name: str) -> str:
    """Bucket names as S3 spells them: 3-63 of a-z 0-9 . _ -, alphanumeric at both ends."""
    if not _BUCKET.fullmatch(name):
        raise GatewayError(
            Reason.INVALID_BUCKET,
            f"invalid bucket name {name!r}: use 3-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting and ending with a letter or digit",
            bucket=name,
        )
    return name

"""How an upload policy compares media types: a declared content type with a
pattern (`image/*`), and a declared type with the type sniffed from the
object's first bytes.

Types are compared by their essence: lower case, without parameters, with
the common aliases folded (`image/jpg` is `image/jpeg`). "Agree" is decided
by agrees(); the README's "Upload policy" section states the same rules.
"""

from __future__ import annotations

import re

# What a write declares when it declares nothing (gateway.domain.objects
# DEFAULT_CONTENT_TYPE), and what the sniffer answers for bytes it does not
# recognise.
OCTET_STREAM = "application/octet-stream"
# What the sniffer answers for no bytes at all.
EMPTY = "application/x-empty"

# Other names of the same types: what clients declare -> what libmagic answers.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "application/x-zip": "application/zip",
    "application/x-sh": "text/x-shellscript",
    "application/x-shellscript": "text/x-shellscript",
    "text/x-sh": "text/x-shellscript",
    "application/xml": "text/xml",
    "application/x-elf": "application/x-executable",
    "application/x-gzip": "application/gzip",
}

# Sniffed types that say only "this is text": they agree with any textual
# declared type (a CSV, JSON or Markdown file sniffs as one of these).
# Text with active content (HTML, scripts, XML) sniffs as its own type.
PLAIN_TEXT = frozenset({"text/plain", "text/csv", "application/json"})
_TEXTUAL_APPLICATION = frozenset(
    {
        "application/json",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/sql",
        "application/javascript",
        "application/ecmascript",
    }
)
# Declared types whose bytes always carry a signature the sniffer knows: bytes
# it does not recognise (application/octet-stream) are not one of them.
SIGNED_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/zstd",
        "application/x-7z-compressed",
        "application/vnd.rar",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-pie-executable",
        "application/wasm",
    }
)
# Formats that are ZIP archives inside: the sniffer may answer plain ZIP.
_ZIP_BASED = re.compile(
    r"application/(vnd\.openxmlformats-officedocument\..+|vnd\.oasis\.opendocument\..+"
    r"|java-archive|epub\+zip|vnd\.android\.package-archive|.+\+zip)"
)
_TCHARS = r"[!#$%&'*+.^_`|~0-9a-z-]+"
_PATTERN = re.compile(rf"(\*/\*|{_TCHARS}/\*|{_TCHARS}/{_TCHARS})")


def essence(content_type: str) -> str:
    """The type without parameters, in lower case, aliases folded
    ("" stays "": nothing declared)."""
    bare = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(bare, bare)


def valid_pattern(pattern: str) -> bool:
    """A pattern is `type/subtype`, `type/*` or `*/*`."""
    kind = pattern.split("/", 1)[0]
    star = "*" in kind and pattern != "*/*"
    return _PATTERN.fullmatch(pattern.lower()) is not None and not star


def matches(pattern: str, media_type: str) -> bool:
    """Whether media_type (an essence) is one pattern names."""
    pattern = pattern.lower()
    if pattern == "*/*":
        return True
    if pattern.endswith("/*"):
        return media_type.startswith(pattern[:-1])
    return essence(pattern) == media_type


def matches_any(patterns: tuple[str, ...], media_type: str) -> bool:
    return any(matches(pattern, media_type) for pattern in patterns)


def is_textual(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type in _TEXTUAL_APPLICATION
        or media_type.endswith(("+json", "+xml"))
    )


def agrees(declared: str, sniffed: str) -> bool:
    """Whether a declared type (an essence) agrees with the sniffed one.

    - the same type (aliases folded) agrees;
    - nothing declared (application/octet-stream) agrees with anything;
    - no bytes (application/x-empty) agree with anything;
    - plain text (text/plain, text/csv, application/json as sniffed) agrees
      with any textual declared type (text/*, JSON, YAML, +xml...);
    - a plain ZIP agrees with the formats that are ZIP inside (docx, jar...);
    - bytes the sniffer does not recognise (application/octet-stream) agree
      with a declared type that is neither textual nor one whose signature
      the sniffer knows (SIGNED_TYPES): random bytes are no PNG.
    """
    if declared in (sniffed, OCTET_STREAM) or sniffed == EMPTY:
        return True
    if sniffed in PLAIN_TEXT:
        return is_textual(declared)
    if sniffed == "application/zip":
        return _ZIP_BASED.fullmatch(declared) is not None
    if sniffed == OCTET_STREAM:
        return not is_textual(declared) and declared not in SIGNED_TYPES
    return False


def effective(declared: str, sniffed: str) -> str:
    """The type the allowed and denied lists judge: the sniffed one, refined
    by the declared one where the sniff says only "text", "ZIP" or "some
    bytes" and the declaration agrees (a CSV declared text/csv is text/csv)."""
    generic = sniffed in PLAIN_TEXT or sniffed in (OCTET_STREAM, EMPTY, "application/zip")
    if generic and declared != OCTET_STREAM and agrees(declared, sniffed):
        return declared
    return sniffed

"""The media type of an object's first bytes, by libmagic (python-magic over
Debian's libmagic1): the upload policy's sniffer.

Why libmagic and not puremagic (the pure-Python one), as measured here: libmagic
names PNG, JPEG, PDF and ELF in 15-50 µs and recognises shell scripts
(text/x-shellscript), HTML and ELF executables; puremagic takes 300-560 µs a
sniff, calls a plain ZIP a docx and knows neither ELF nor scripts nor text.

Only the first SNIFF_WINDOW bytes are looked at. Bytes libmagic has no quick
answer for (text, unknown binary) walk its whole database: a few hundred µs,
so those are sniffed in a worker thread (ctypes lets go of the GIL), the
formats with a signature at offset 0 (CHEAP_SIGNATURES) on the event loop.
A libmagic handle (a "cookie") is not thread-safe: each thread has its own
(the loop's, for signatures; the default executor's, for the rest: a bounded
set). Each maps libmagic's database file (8 MB): RSS counts those pages once
per handle, the machine's memory once (they are the page cache's, shared).
"""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType

# Formats whose signatures are far inside a file (tar's at 257, ISO 9660's at
# 32 KiB) are not looked for; everything the policy's rules need is in these.
SNIFF_WINDOW = 2048

# libmagic's flags (magic.h, file 5.44): a MIME type, without the checks that
# cost time and name nothing the policy judges: decompressing (the compressed
# file is named, not its content), tar, CDF (old Office documents: then
# application/octet-stream), the application-type and token checks. The text
# encoding check stays: without it HTML reads as text/plain.
MAGIC_MIME_TYPE = 0x0000010
MAGIC_NO_CHECK_COMPRESS = 0x0001000
MAGIC_NO_CHECK_TAR = 0x0002000
MAGIC_NO_CHECK_APPTYPE = 0x0008000
MAGIC_NO_CHECK_CDF = 0x0040000
MAGIC_NO_CHECK_TOKENS = 0x0100000
MAGIC_NO_CHECK_TEXT = 0x0020000
MAGIC_NO_CHECK_CSV = 0x0080000
MAGIC_NO_CHECK_ENCODING = 0x0200000
MAGIC_NO_CHECK_JSON = 0x0400000
MAGIC_PARAM_BYTES_MAX = 6
FLAGS = (
    MAGIC_MIME_TYPE
    | MAGIC_NO_CHECK_COMPRESS
    | MAGIC_NO_CHECK_TAR
    | MAGIC_NO_CHECK_APPTYPE
    | MAGIC_NO_CHECK_TOKENS
    | MAGIC_NO_CHECK_CDF
)
# For bytes that begin with a binary signature (CHEAP_SIGNATURES) the text
# checks can name nothing: without them such a sniff takes 5-15 µs less.
SIGNED_FLAGS = (
    FLAGS | MAGIC_NO_CHECK_TEXT | MAGIC_NO_CHECK_CSV | MAGIC_NO_CHECK_ENCODING | MAGIC_NO_CHECK_JSON
)

# Signatures at offset 0 that libmagic matches among its first entries
# (15-100 µs): sniffed on the loop, where a thread hop would cost more.
CHEAP_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"%PDF-",
    b"PK\x03\x04",  # ZIP
    b"\x7fELF",
)

# Prefixes that settle the type as libmagic would name it (its rule for each
# is that fixed prefix; tests/core/test_upload_policy.py holds them to
# libmagic's answers): named without asking libmagic, the common images and
# documents cost a prefix test, not a sniff that touches its 8 MB database.
# (Not JPEG: libmagic wants more than its first three bytes to name one.)
SETTLED_PREFIXES = (
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)

_local = threading.local()


def _magic() -> ModuleType:
    """python-magic, imported on first use: a gateway whose buckets sniff
    nothing runs where libmagic1 is not installed (check() says so at start
    when one does)."""
    import magic  # loads libmagic1

    return magic


def check() -> None:
    """Raise ImportError (naming libmagic) unless the sniffer can run."""
    sniff(b"")


def _cookie(flags: int) -> object:
    """This thread's libmagic handle with flags, opened and loaded on first use."""
    cookies: dict[int, object] | None = getattr(_local, "cookies", None)
    if cookies is None:
        cookies = _local.cookies = {}
    cookie = cookies.get(flags)
    if cookie is None:
        magic = _magic()
        cookie = magic.magic_open(flags)
        magic.magic_load(cookie, None)
        magic.magic_setparam(cookie, MAGIC_PARAM_BYTES_MAX, SNIFF_WINDOW)
        cookies[flags] = cookie
    return cookie


def sniff(head: bytes) -> str:
    """The MIME type of head's first SNIFF_WINDOW bytes, as libmagic names
    it ("application/octet-stream": not recognised, "application/x-empty":
    no bytes)."""
    flags = SIGNED_FLAGS if head.startswith(CHEAP_SIGNATURES) else FLAGS
    answer = _magic().magic_buffer(_cookie(flags), head[:SNIFF_WINDOW])
    return answer.decode("ascii", "replace") if isinstance(answer, bytes) else str(answer)


def settled_type(head: bytes) -> str | None:
    """The type head's first bytes settle (SETTLED_PREFIXES); None: ask libmagic."""
    for prefix, media_type in SETTLED_PREFIXES:
        if head.startswith(prefix):
            return media_type
    return None


async def sniff_type(head: bytes) -> str:
    """The type of head as sniff() names it: settled by its prefix, else by
    libmagic, in a worker thread unless head starts with a cheap signature."""
    settled = settled_type(head)
    if settled is not None:
        return settled
    if head.startswith(CHEAP_SIGNATURES):
        return sniff(head)
    return await asyncio.to_thread(sniff, head)

"""Paging and delimiter roll-up for drivers that can walk keys in order
(local, memory: build_page), and the parts every driver's listing shares:
where a query's page starts, the page budget in bytes, the roll-up of a key
into its common prefix, and the refusal of a foreign page token. Drivers with
native listing (S3, GCS) page with these around their storage's calls.

Positions are UTF-8 bytes, compared bytewise, which is the order List
promises. To step past every key under a rolled-up prefix P, the walk resumes
after P + b"\\xff": no UTF-8 sequence contains 0xFF, so every key starting
with P sorts below it and every other key above P sorts above it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable

from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import ListPage, ListQuery, ObjectMeta

# Yields objects whose key starts with prefix and whose UTF-8 key is > after,
# in bytewise key order.
Walk = Callable[[str, bytes], AsyncIterator[ObjectMeta]]

_TOKEN_VERSION = b"\x01"
# Appended to a common prefix: the position past every key under it.
PAST_PREFIX = b"\xff"

# What a listed entry adds to a ListResponse beyond the lengths of its strings
# (field tags, length prefixes, size, generation, checksums, timestamps, the
# bucket name): a generous bound, so that estimates never fall short.
_ENTRY_OVERHEAD = 256
# What one metadata pair adds beyond its key and value (map-entry framing).
_PAIR_OVERHEAD = 16


def entry_bytes(meta: ObjectMeta) -> int:
    """An upper bound of what meta adds to a ListResponse once encoded."""
    size = _ENTRY_OVERHEAD + len(meta.key.encode()) + len(meta.content_type.encode())
    size += len(meta.etag.encode()) + len(meta.storage_class.encode())
    for name, value in meta.metadata.items():
        size += len(name.encode()) + len(value.encode()) + _PAIR_OVERHEAD
    return size


def prefix_bytes(prefix: str) -> int:
    """An upper bound of what a common prefix adds to a ListResponse."""
    return len(prefix.encode()) + _PAIR_OVERHEAD


class PageBudget:
    """Counts the bytes of a page's entries against max_bytes (None: no bound).

    A page always takes its first entry, so that listing makes progress; any
    legal entry is far smaller than the message limit the budget is cut from.
    """

    __slots__ = ("_empty", "_left")

    def __init__(self, max_bytes: int | None) -> None:
        self._left = max_bytes
        self._empty = True

    def take(self, size: int) -> bool:
        """Count an entry of size bytes in; False (nothing counted) when the
        page is not empty and the entry would take it over budget."""
        if self._left is not None:
            if size > self._left and not self._empty:
                return False
            self._left -= size
        self._empty = False
        return True


def encode_token(after: bytes) -> str:
    return base64.urlsafe_b64encode(_TOKEN_VERSION + after).decode("ascii")


def bad_page_token() -> GatewayError:
    """The refusal of a page token no driver of this gateway issued."""
    return GatewayError(
        Reason.INVALID_PAGE_TOKEN,
        "page_token is not one this gateway issued; pass next_page_token unchanged",
    )


def decode_token(token: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if not raw.startswith(_TOKEN_VERSION):
        raise bad_page_token()
    return raw[len(_TOKEN_VERSION) :]


def start_position(query: ListQuery) -> bytes:
    """The position query's page starts after: start_after, or its page
    token's position where that is further on."""
    after = query.start_after.encode()
    if query.page_token:
        after = max(after, decode_token(query.page_token))
    return after


async def build_page(walk: Walk, query: ListQuery) -> ListPage:
    """One page of what query asks for (see ListQuery), walking keys in order:
    a page cut short by bytes continues right after its last entry."""
    prefix, delimiter, page_size = query.prefix, query.delimiter, query.page_size
    after = start_position(query)
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    budget = PageBudget(query.max_bytes)
    more = False
    while True:
        restart_after: bytes | None = None
        entries = walk(prefix, after)
        try:
            async for meta in entries:
                if len(objects) + len(prefixes) == page_size:
                    more = True
                    break
                rolled = roll_up(meta.key, prefix, delimiter)
                if rolled is None:
                    if not budget.take(entry_bytes(meta)):
                        more = True
                        break
                    objects.append(meta)
                    after = meta.key.encode()
                    continue
                if not budget.take(prefix_bytes(rolled)):
                    more = True
                    break
                prefixes.append(rolled)
                after = rolled.encode() + PAST_PREFIX
                restart_after = after
                break
        finally:
            await entries.aclose()  # type: ignore[attr-defined]
        if restart_after is None:
            break
    return ListPage(objects, prefixes, encode_token(after) if more else "")


def roll_up(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix key (under prefix) rolls up into: up to and with the
    first delimiter past prefix; None without one."""
    if not delimiter:
        return None
    cut = key.find(delimiter, len(prefix))
    return None if cut < 0 else key[: cut + len(delimiter)]

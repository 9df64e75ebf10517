"""Listing for the GCS driver: objects.list, paged by position, not by GCS's
page tokens.

The gateway's page token holds the last position returned (the UTF-8 bytes
of the last key, or of the last common prefix followed by 0xFF, as in
gateway/domain/listing.py), and each call asks GCS for names from startOffset
there on. That gives exact page sizes (GCS may return fewer than asked, or
more: fake-gcs-server ignores maxResults for prefixes) and drops what a
server repeats: fake-gcs-server sends every common prefix on every page,
while GCS sends each once. Anything at or before the position was already
returned, so dropping it is right in general, not only for the emulator.

A response with a nextPageToken is only complete up to its last entry, and
up to its last object when its objects alone fill maxResults (the emulator
counts objects only, and its prefixes run past them); entries beyond are
left for the next call. Listings carry full object resources, so listed
objects have their content type, metadata, generation and checksums.

Names under `.storagegw/` (the gateway's upload records; keys.py refuses
such keys) are left out, objects and common prefixes alike.
"""

from __future__ import annotations

from typing import Any

from gateway.backends.gcs.common import GcsContext, meta_from, resource_of
from gateway.domain.keys import RESERVED_SEGMENT
from gateway.domain.listing import (
    PAST_PREFIX,
    PageBudget,
    bad_page_token,
    encode_token,
    entry_bytes,
    prefix_bytes,
    roll_up,
    start_position,
)
from gateway.domain.objects import ListPage, ListQuery, ObjectMeta

_HIDDEN = RESERVED_SEGMENT + "/"  # the gateway's upload records, never listed


def _successor(prefix: str) -> str:
    """The least string above every string starting with prefix (code point
    order is UTF-8 byte order)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return ""


def _start_offset(after: bytes) -> str:
    """startOffset (inclusive) for names above position after."""
    try:
        if after.endswith(PAST_PREFIX):
            return _successor(after[:-1].decode())
        return after.decode()  # the name itself comes back and is dropped
    except UnicodeDecodeError:
        raise bad_page_token() from None


def _one_call(
    ctx: GcsContext,
    prefix: str,
    delimiter: str,
    start_offset: str,
    max_results: int,
    page_token: str | None,
) -> tuple[list[Any], list[str], str | None]:
    """One objects.list call (in the pool): (blobs, prefixes, nextPageToken)."""
    iterator = ctx.client.list_blobs(
        ctx.bucket,
        prefix=ctx.name(prefix) or None,
        delimiter=delimiter or None,
        start_offset=ctx.name(start_offset) if start_offset else None,
        page_size=max_results,
        page_token=page_token,
        retry=ctx.retry,
    )
    page = next(iterator.pages)
    blobs = list(page)
    return blobs, list(page.prefixes), iterator.next_page_token


async def list_page(ctx: GcsContext, query: ListQuery) -> ListPage:
    """One page of at most query.page_size entries, fewer only on the last
    page or when the next entry would take the page over query.max_bytes
    (see gateway.domain.listing)."""
    prefix, delimiter, page_size = query.prefix, query.delimiter, query.page_size
    after = start_position(query)
    cut = len(ctx.prefix)
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    server_token: str | None = None
    more = False
    budget = PageBudget(query.max_bytes)
    group = _group_of(after, prefix, delimiter)
    if group is not None:
        # A caller's start_after inside a group (a/05 in a/): the group counts
        # if it holds a later name; servers disagree on reporting it (the
        # emulator compares the prefix itself with startOffset), so ask.
        if await _has_names_after(ctx, group, after):
            budget.take(prefix_bytes(group))  # the first entry always fits
            prefixes.append(group)
        after = group.encode() + PAST_PREFIX
        if len(prefixes) == page_size:
            return ListPage(objects, prefixes, encode_token(after))
    while True:
        need = page_size - len(objects) - len(prefixes)
        asked = need + 2  # one more than needed, plus the position itself
        with ctx.errors(op="objects.list", missing="bucket"):
            blobs, found, next_token = await ctx.run(
                _one_call, ctx, prefix, delimiter, _start_offset(after), asked, server_token
            )
        ctx.bucket_seen = True
        entries: list[tuple[bytes, ObjectMeta | str]] = []
        for blob in blobs:
            key = str(blob.name)[cut:]
            if key.encode() > after and not key.startswith(_HIDDEN):
                entries.append((key.encode(), meta_from(key, resource_of(blob))))
        for full in found:
            rolled = str(full)[cut:]
            position = rolled.encode() + PAST_PREFIX
            if position > after and not rolled.startswith(_HIDDEN):
                entries.append((position, rolled))
        entries.sort(key=lambda entry: entry[0])
        if next_token:
            if len(blobs) >= asked and blobs:
                bound = str(blobs[-1].name)[cut:].encode()
            else:
                bound = entries[-1][0] if entries else after
            entries = [entry for entry in entries if entry[0] <= bound]
        over_budget = False
        for position, entry in entries[:need]:
            if isinstance(entry, str):
                if not budget.take(prefix_bytes(entry)):
                    over_budget = True
                    break
                prefixes.append(entry)
            else:
                if not budget.take(entry_bytes(entry)):
                    over_budget = True
                    break
                objects.append(entry)
            after = position
        if over_budget or len(entries) > need:
            more = True
            break
        if not next_token:
            break
        if len(objects) + len(prefixes) == page_size:
            more = True
            break
        # Progress restarts from the new position; without any, follow GCS's
        # own token from the same startOffset.
        server_token = None if entries else next_token
    return ListPage(objects, prefixes, encode_token(after) if more else "")


def _group_of(after: bytes, prefix: str, delimiter: str) -> str | None:
    """The common prefix position after falls inside, if any."""
    if not delimiter or after.endswith(PAST_PREFIX):
        return None
    try:
        text = after.decode()
    except UnicodeDecodeError:
        raise bad_page_token() from None
    return roll_up(text, prefix, delimiter) if text.startswith(prefix) else None


async def _has_names_after(ctx: GcsContext, rolled: str, after: bytes) -> bool:
    """Whether the group rolled holds a name above after."""
    with ctx.errors(op="objects.list", missing="bucket"):
        blobs, _, _ = await ctx.run(_one_call, ctx, rolled, "", after.decode(), 2, None)
    cut = len(ctx.prefix)
    return any(str(blob.name)[cut:].encode() > after for blob in blobs)

"""A dedup bucket's List: the references as their objects (a store whose
listing carries no metadata, S3 or GCS, costs a head of each), the layer's
own keys hidden. Paged by gateway.domain.listing.build_page over a walk of
the inner listing, so that page sizes, byte budgets (of the objects as
presented, metadata included), delimiters and page tokens are the gateway's
own, whatever the inner listing reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.backends.base import Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.listing import PAST_PREFIX, build_page
from gateway.domain.objects import ListPage, ListQuery, ObjectMeta
from gateway.layers.dedup.names import PAST_RESERVED, is_reserved, presented

# References listed without their metadata are read this many at once.
_HEADS_AT_ONCE = 16
_INNER_PAGE = 1000
# Sorts after every character a key may hold: where a listing resumes past
# every key under a common prefix (its UTF-8 position ends in 0xFF).
_LAST_CHARACTER = "\U0010ffff"


def _start_after(after: bytes) -> str:
    """A start_after for the inner listing at or before the position after."""
    if after.endswith(PAST_PREFIX):
        return after[: -len(PAST_PREFIX)].decode() + _LAST_CHARACTER
    return after.decode()


async def list_page(inner: Backend, query: ListQuery) -> ListPage:
    if is_reserved(query.prefix):
        return ListPage([], [])
    # No more read ahead (each possibly a head) than a page can take.
    batch = max(1, min(_INNER_PAGE, query.page_size + 1))

    async def walk(prefix: str, after: bytes) -> AsyncIterator[ObjectMeta]:
        start, token = _start_after(after), ""
        while True:
            page = await inner.list(
                ListQuery(page_size=batch, prefix=prefix, start_after=start, page_token=token)
            )
            entries = [m for m in page.objects if not is_reserved(m.key)]
            for meta in await presented_entries(inner, entries):
                if meta.key.encode() > after:
                    yield meta
            token = page.next_page_token
            if not token:
                return
            last = page.objects[-1].key if page.objects else ""
            if is_reserved(last):
                # Into the layer's own keys: resume past all of them.
                start, token = max(start, PAST_RESERVED), ""

    return await build_page(walk, query)


async def presented_entries(inner: Backend, entries: list[ObjectMeta]) -> list[ObjectMeta]:
    """Listed references as their objects, in order; one deleted meanwhile
    is left out."""
    limit = asyncio.Semaphore(_HEADS_AT_ONCE)

    async def one(entry: ObjectMeta) -> ObjectMeta | None:
        if entry.metadata:
            return presented(entry)
        async with limit:
            try:
                return presented(await inner.head(entry.key))
            except GatewayError as error:
                if error.reason is Reason.OBJECT_NOT_FOUND:
                    return None
                raise

    found = await asyncio.gather(*(one(entry) for entry in entries))
    return [meta for meta in found if meta is not None]

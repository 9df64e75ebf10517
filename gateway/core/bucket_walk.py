"""Every object under a prefix of a backend, listed a page at a time: what
the gateway's own passes over a bucket read (the sweeps of expired and of
pending objects, a plain bucket's statistics)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.backends.base import Backend
from gateway.domain.objects import ListQuery, ObjectMeta

PAGE_SIZE = 1000


async def walk(backend: Backend, prefix: str = "") -> AsyncIterator[ObjectMeta]:
    """The objects under prefix in key order, one page held at a time. The
    next page is listed only once the caller has taken this page's objects,
    so what it does to each (a delete) comes before the listing goes on."""
    token = ""
    while True:
        page = await backend.list(ListQuery(page_size=PAGE_SIZE, prefix=prefix, page_token=token))
        for meta in page.objects:
            yield meta
        token = page.next_page_token
        if not token:
            return

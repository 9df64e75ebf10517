"""Listing for the S3 driver: ListObjectsV2, topped up to full pages.

The page token is opaque to callers: base64 of a small JSON object holding
S3's continuation token. ListObjectsV2 returns neither content types nor
metadata, so listed objects carry the default content type, no metadata and
no checksums (HEAD has them). Keys under `.storagegw/` (the gateway's upload
records) are left out.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.backends.s3.common import S3Context, unquote_etag
from gateway.domain.keys import RESERVED_SEGMENT
from gateway.domain.listing import PageBudget, bad_page_token, entry_bytes, prefix_bytes
from gateway.domain.objects import ListPage, ListQuery, ObjectMeta

# Keys the gateway keeps its own records under (upload_records.RECORDS_PREFIX):
# never listed.
HIDDEN = f"{RESERVED_SEGMENT}/"

_TOKEN_VERSION = 1


# A StartAfter that skips a whole common prefix P: above every key of P that
# listing reaches (keys of P starting with U+10FFFF, unassigned, aside).
_PAST_PREFIX = "\U0010ffff"


def _encode_token(continuation: str) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "c": continuation}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii")


def _encode_resume_token(start_after: str) -> str:
    """A token for a page cut short by bytes: the next call lists from
    StartAfter start_after (S3 hands out no continuation token mid-page)."""
    raw = json.dumps({"v": _TOKEN_VERSION, "a": start_after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii")


def _decode_token(token: str) -> tuple[str, str]:
    """(S3 continuation token, "") or ("", start after) of a token we issued."""
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if value.get("v") == _TOKEN_VERSION:
            if isinstance(value.get("c"), str) and value["c"]:
                return str(value["c"]), ""
            if isinstance(value.get("a"), str) and value["a"]:
                return "", str(value["a"])
    except (binascii.Error, UnicodeError, ValueError, AttributeError):
        pass
    raise bad_page_token()


async def list_page(ctx: S3Context, query: ListQuery) -> ListPage:
    """One page of query.page_size entries, fewer only on the last page or
    when the next entry would take the page over query.max_bytes (see
    gateway.domain.listing).

    S3 may return fewer than MaxKeys with more to come (Ceph RGW stops at 848
    of 1,000 here), so short pages are topped up with further calls: callers
    get the same page sizes as from every other backend.
    """
    page = await _one_call(ctx, query)
    objects, prefixes = list(page.objects), list(page.common_prefixes)
    token = page.next_page_token
    while token and len(objects) + len(prefixes) < query.page_size:
        missing = query.page_size - len(objects) - len(prefixes)
        rest = replace(query, start_after="", page_size=missing, page_token=token)
        more = await _one_call(ctx, rest)
        objects += more.objects
        prefixes += more.common_prefixes
        token = more.next_page_token
    return _within(ListPage(objects, prefixes, token), query.max_bytes)


def _within(page: ListPage, max_bytes: int | None) -> ListPage:
    """page, cut after its last entry (in key order) that fits max_bytes."""
    entries: list[tuple[bytes, ObjectMeta | str]] = [(m.key.encode(), m) for m in page.objects]
    entries += [(p.encode(), p) for p in page.common_prefixes]
    entries.sort(key=lambda entry: entry[0])
    budget = PageBudget(max_bytes)
    for index, (_, entry) in enumerate(entries):
        size = prefix_bytes(entry) if isinstance(entry, str) else entry_bytes(entry)
        if not budget.take(size):
            kept = [entry for _, entry in entries[:index]]
            last = kept[-1]
            resume = last + _PAST_PREFIX if isinstance(last, str) else last.key
            return ListPage(
                [e for e in kept if not isinstance(e, str)],
                [e for e in kept if isinstance(e, str)],
                _encode_resume_token(resume),
            )
    return page


async def _one_call(ctx: S3Context, query: ListQuery) -> ListPage:
    """One ListObjectsV2 call: at most query.page_size entries (objects plus
    common prefixes: S3's MaxKeys counts both), keys and prefixes without
    ctx.prefix. query.max_bytes is left to the caller."""
    args: dict[str, Any] = {
        "Bucket": ctx.bucket,
        "Prefix": ctx.s3_key(query.prefix),
        "MaxKeys": query.page_size,
    }
    if query.delimiter:
        args["Delimiter"] = query.delimiter
    start_after = query.start_after
    if query.page_token:
        continuation, resume_after = _decode_token(query.page_token)
        if continuation:
            args["ContinuationToken"] = continuation
        elif resume_after.encode() > start_after.encode():
            start_after = resume_after
    if start_after:
        args["StartAfter"] = ctx.s3_key(start_after)
    with ctx.errors(op="ListObjectsV2"):
        response = await ctx.client.list_objects_v2(**args)
    ctx.bucket_seen = True
    cut = len(ctx.prefix)
    objects = []
    for item in response.get("Contents", []):
        if str(item["Key"])[cut:].startswith(HIDDEN):
            continue  # the gateway's own records
        etag = unquote_etag(str(item.get("ETag", "")))
        modified: datetime = item["LastModified"]
        time_ns = int(modified.timestamp()) * 1_000_000_000
        objects.append(
            ObjectMeta(
                key=str(item["Key"])[cut:],
                size=int(item.get("Size", 0)),
                etag=etag,
                # Listings carry no metadata, so not the write's own
                # generation: 0 says unknown rather than a different number.
                generation=0,
                create_time_ns=time_ns,
                update_time_ns=time_ns,
                storage_class=str(item.get("StorageClass") or "STANDARD"),
            )
        )
    prefixes = [str(p["Prefix"])[cut:] for p in response.get("CommonPrefixes", [])]
    prefixes = [p for p in prefixes if not p.startswith(HIDDEN)]
    token = ""
    if response.get("IsTruncated") and response.get("NextContinuationToken"):
        token = _encode_token(str(response["NextContinuationToken"]))
    return ListPage(objects, prefixes, token)

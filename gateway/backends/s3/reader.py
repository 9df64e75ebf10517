"""The S3 driver's read path: one ranged GetObject, its conditions sent to S3
where S3 can evaluate them, and a reader streaming the body re-cut into
chunks of exactly chunk_size bytes (the last one shorter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.backends.base import RangeReader
from gateway.backends.s3.common import (
    KIND,
    NETWORK_ERRORS,
    S3_ERRORS,
    S3Context,
    is_invalid_range,
    is_not_found,
    quote_etag,
    size_in_invalid_range,
)
from gateway.backends.s3.pieces import Pieces
from gateway.domain import ranges
from gateway.domain.conditions import check as check_conditions
from gateway.domain.conditions import check_existing
from gateway.domain.errors import GatewayError, Reason, backend_unavailable, changed_while_read
from gateway.domain.objects import Conditions, ObjectMeta

# How many times one Get takes up a body the network broke, before it fails.
BODY_RESUMES = 3


async def head(ctx: S3Context, key: str, conditions: Conditions) -> ObjectMeta:
    """The object's metadata, if it exists and meets conditions."""
    meta = await ctx.head_or_none(key)
    return check_existing(key, conditions, meta)


async def open_reader(
    ctx: S3Context, key: str, offset: int, limit: int | None, conditions: Conditions
) -> S3Reader:
    """A reader of the range offset/limit of key (see ranges.resolve)."""
    if limit == 0:
        meta = await head(ctx, key, conditions)
        start, end = ranges.resolve(meta.size, offset, limit)
        return S3Reader(ctx, meta, None, start, end)
    args: dict[str, Any] = {"Bucket": ctx.bucket, "Key": ctx.s3_key(key)}
    if conditions.if_match:
        args["IfMatch"] = quote_etag(conditions.if_match)
    if conditions.if_none_match and conditions.if_none_match != "*":
        args["IfNoneMatch"] = quote_etag(conditions.if_none_match)
    if offset < 0:
        args["Range"] = f"bytes={offset}"  # the last -offset bytes
    elif offset > 0 or limit is not None:
        last = "" if limit is None else str(offset + limit - 1)
        args["Range"] = f"bytes={offset}-{last}"
    try:
        response = await ctx.client.get_object(**args)
    except S3_ERRORS as error:
        if is_invalid_range(error):
            # Past the end, an empty object, or offset == size: S3 says 416
            # to all of these; the contract only refuses offset > size,
            # which the answer tells where it names the size (S3 judged
            # the ETag conditions first; the generation ones need the head).
            size = size_in_invalid_range(error)
            judged = conditions.if_generation_match is None and (
                conditions.if_generation_not_match is None
            )
            if size is not None and offset > size and judged:
                ranges.resolve(size, offset, limit)
            meta = await head(ctx, key, conditions)
            start, end = ranges.resolve(meta.size, offset, limit)
            return S3Reader(ctx, meta, None, start, end)
        if is_not_found(error):
            check_conditions(key, conditions, None, read=True)
        with ctx.errors(key, "if_match", "GetObject"):
            raise
    ctx.bucket_seen = True
    body = response["Body"]
    try:
        content_range = str(response.get("ContentRange") or "")
        length = int(response["ContentLength"])
        if content_range.startswith("bytes ") and "/" in content_range:
            span, _, total = content_range[6:].partition("/")
            first, _, last_byte = span.partition("-")
            size, start, end, skip = int(total), int(first), int(last_byte) + 1, 0
            if limit is not None:
                end = min(end, start + limit)
        else:  # the whole object (no Range sent, or the server ignored it)
            size = length
            start, end = ranges.resolve(size, offset, limit)
            skip = start
        meta = await ctx.meta_from(key, response, size=size)
        check_conditions(key, conditions, meta, read=True)
    except BaseException:
        body.close()
        raise
    return S3Reader(ctx, meta, body, start, end, skip)


async def open_version(
    ctx: S3Context, meta: ObjectMeta, offset: int, limit: int | None
) -> S3Reader:
    """A reader of the range offset/limit of the object meta describes: one
    GetObject pinned to its ETag, its metadata (and tags) not read again."""
    start, end = ranges.resolve(meta.size, offset, limit)
    if start >= end:
        return S3Reader(ctx, meta, None, start, end)
    key = meta.key
    args: dict[str, Any] = {
        "Bucket": ctx.bucket,
        "Key": ctx.s3_key(key),
        "IfMatch": quote_etag(meta.etag),
        "Range": f"bytes={start}-{end - 1}",
    }
    try:
        response = await ctx.client.get_object(**args)
    except S3_ERRORS as error:
        if is_not_found(error):
            check_conditions(key, Conditions(if_match=meta.etag), None, read=True)
        with ctx.errors(key, "if_match", "GetObject"):
            raise
    ranged = str(response.get("ContentRange") or "").startswith("bytes ")
    # A server ignoring Range sends the whole object: what precedes start is skipped.
    return S3Reader(ctx, meta, response["Body"], start, end, 0 if ranged else start)


class S3Reader(RangeReader):
    """A range of an object, streamed from one GetObject response."""

    def __init__(
        self, ctx: S3Context, meta: ObjectMeta, body: Any, start: int, end: int, skip: int = 0
    ) -> None:
        super().__init__(meta, start, end)
        self._ctx = ctx
        self._body = body
        self._skip = skip  # leading body bytes before start (a server ignoring Range)
        self._closed = False

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        remaining = self._end - self._start
        if remaining <= 0 or self._body is None:
            return
        skip = self._skip
        buffer = Pieces()
        resumes = 0
        while remaining:
            try:
                async for piece in self._body.iter_chunks(chunk_size):
                    if self._closed:
                        return
                    if skip:
                        dropped = min(skip, len(piece))
                        piece, skip = piece[dropped:], skip - dropped
                    truncated = len(piece) > remaining
                    piece = piece[:remaining]
                    remaining -= len(piece)
                    buffer.append(piece)
                    while buffer.size >= chunk_size:
                        yield buffer.take(chunk_size)
                    if truncated:
                        break  # the rest of the body is not ours (a suffix with a limit)
                break
            except NETWORK_ERRORS:
                # A body the network broke (a connection reset, a read that
                # timed out) is taken up again where it broke, pinned to the
                # object's ETag, as s3transfer's downloads do: a replaced
                # object then ends the Get with OBJECT_NOT_FOUND
                # (changed_while_read), never with spliced bytes.
                if resumes == BODY_RESUMES or self._closed:
                    with self._ctx.errors(self._meta.key, op="GetObject"):
                        raise
                resumes += 1
                skip = await self._resume(self._end - remaining)
        if buffer.size:
            yield buffer.take(buffer.size)
        if remaining:
            raise backend_unavailable(
                backend=KIND,
                detail=f"S3 GetObject: the body of {self._meta.key!r} ended "
                f"{remaining} bytes early",
            )
        await self.close()

    async def _resume(self, position: int) -> int:
        """Continue the body at object byte position, from a new GetObject
        pinned to the ETag first read; the new body's leading bytes to skip."""
        if self._body is not None:
            self._body.close()
        try:
            resumed = await open_version(self._ctx, self._meta, position, self._end - position)
        except GatewayError as error:
            if error.reason in (Reason.PRECONDITION_FAILED, Reason.OBJECT_NOT_FOUND):
                # The ETag first read is gone: what follows would be another object's.
                raise changed_while_read(key=self._meta.key) from error
            raise
        self._body, resumed._body = resumed._body, None
        return resumed._skip

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._body is not None:
            self._body.close()
            self._body = None

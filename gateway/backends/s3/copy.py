"""Server-side copy of sources too large for CopyObject: UploadPartCopy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gateway.backends.s3.common import MAX_PARTS, S3_ERRORS, S3Context, unquote_etag
from gateway.backends.s3.settings import MIB
from gateway.backends.shared.remote_writer import shielded
from gateway.domain.errors import GatewayError


async def multipart_copy(
    ctx: S3Context,
    common: dict[str, Any],
    native: dict[str, str],
    condition: str,
    copy_source: dict[str, str],
    source_etag: str,
    size: int,
    part_size: int,
    concurrency: int,
    background: set[asyncio.Task[None]],
    key: str,
) -> str:
    """Copy size bytes of copy_source (pinned to source_etag) into a new
    multipart upload created with common's arguments, `concurrency` parts at
    a time; complete it with native's conditions. The upload is aborted on
    any failure or cancellation. Returns the new object's ETag."""
    part = max(part_size, -(-size // (MAX_PARTS * MIB)) * MIB)
    with ctx.errors(key, op="CreateMultipartUpload"):
        created = await ctx.client.create_multipart_upload(**common)
    upload_id = str(created["UploadId"])
    target = {"Bucket": common["Bucket"], "Key": common["Key"], "UploadId": upload_id}
    window = asyncio.Semaphore(concurrency)

    async def copy_part(number: int, first: int) -> dict[str, Any]:
        last = min(size, first + part) - 1
        async with window:
            with ctx.errors(key, "source unchanged", "UploadPartCopy"):
                response = await ctx.client.upload_part_copy(
                    **target,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceIfMatch=source_etag,
                    CopySourceRange=f"bytes={first}-{last}",
                )
        return {"ETag": response["CopyPartResult"]["ETag"], "PartNumber": number}

    tasks = [
        asyncio.ensure_future(copy_part(n, first))
        for n, first in enumerate(range(0, size, part), start=1)
    ]
    completed = False
    try:
        parts = await asyncio.gather(*tasks)
        with ctx.errors(key, condition or "source unchanged", "CompleteMultipartUpload"):
            response = await ctx.client.complete_multipart_upload(
                **target, MultipartUpload={"Parts": parts}, **native
            )
        completed = True
        return unquote_etag(str(response["ETag"]))
    finally:
        if not completed:
            await shielded(_abort(ctx, tasks, target), background)


async def _abort(
    ctx: S3Context, tasks: Sequence[asyncio.Future[Any]], target: dict[str, str]
) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    try:
        await ctx.client.abort_multipart_upload(**target)
    except (*S3_ERRORS, GatewayError):
        pass

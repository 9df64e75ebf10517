"""Signed URLs of the S3 driver: signed by S3 itself (SigV4), for GET, PUT or
a POST policy."""

from __future__ import annotations

from typing import Any

from gateway.backends.s3.common import KIND, S3Context
from gateway.backends.shared import presign
from gateway.domain.errors import unsupported
from gateway.domain.objects import Presigned, PresignRequest

MAX_OBJECT_SIZE = 5 * 1024**4  # S3's largest object: 5 TiB


async def sign_url(ctx: S3Context, request: PresignRequest) -> Presigned:
    """A URL signed by S3 itself (SigV4): GET, PUT, or a POST policy."""
    key, method = request.key, request.method
    if method == "POST":
        return await _presign_post(ctx, request)
    params: dict[str, Any] = {"Bucket": ctx.bucket, "Key": ctx.s3_key(key)}
    headers: dict[str, str] = {}
    if method == "GET":
        if request.download:
            params["ResponseContentDisposition"] = presign.download_disposition(request)
        if request.content_type:
            params["ResponseContentType"] = request.content_type
        operation = "get_object"
    elif method == "PUT":
        headers = presign.put_headers(request, KIND)
        if request.content_type:
            params["ContentType"] = request.content_type
        operation = "put_object"
    else:
        raise unsupported(option=f"signed {method} URLs", backend=KIND)
    with ctx.errors(key, op="presign"):
        url = await ctx.client.generate_presigned_url(
            operation, Params=params, ExpiresIn=request.expires_in_s, HttpMethod=method
        )
    return Presigned(str(url), headers)


async def _presign_post(ctx: S3Context, request: PresignRequest) -> Presigned:
    # Bytes above max_size are refused by S3 itself, before anything is
    # stored (botocore adds the exact key to the policy).
    fields, conditions = presign.post_policy(request, MAX_OBJECT_SIZE)
    with ctx.errors(request.key, op="presign"):
        post = await ctx.client.generate_presigned_post(
            ctx.bucket,
            ctx.s3_key(request.key),
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=request.expires_in_s,
        )
    return presign.signed_post(post)

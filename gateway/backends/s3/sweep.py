"""The S3 driver's stale-upload sweep: resumable uploads judged by their
records, and every other multipart upload under the prefix by its date."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.backends.s3.common import S3_ERRORS, S3Context, error_code_of
from gateway.backends.s3.uploads import owned_by
from gateway.backends.shared.resumable import ResumableUploads


async def abort_stale_uploads(
    ctx: S3Context, uploads: ResumableUploads, cutoff: float, *, dry_run: bool = False
) -> int:
    """Abort resumable uploads created, and other multipart uploads under
    the prefix started, before cutoff (seconds since the epoch); how many
    were aborted. A resumable upload is judged by its record, never by its
    multipart upload's date.

    Multipart uploads are listed before the records: a resumable upload's
    record is written before its multipart upload is created, so every
    multipart upload listed has its record in the listing that follows
    (or none: not a resumable one).

    dry_run: abort nothing; how many would be aborted."""
    candidates: list[tuple[str, str]] = []
    args: dict[str, Any] = {"Bucket": ctx.bucket, "Prefix": ctx.prefix}
    while True:
        with ctx.errors(op="ListMultipartUploads"):
            response = await ctx.client.list_multipart_uploads(**args)
        for upload in response.get("Uploads", []):
            initiated: datetime = upload["Initiated"]
            if initiated.timestamp() < cutoff:
                candidates.append((str(upload["Key"]), str(upload["UploadId"])))
        if not response.get("IsTruncated"):
            break
        args["KeyMarker"] = response.get("NextKeyMarker", "")
        args["UploadIdMarker"] = response.get("NextUploadIdMarker", "")
    swept = await uploads.sweep(cutoff, dry_run=dry_run)
    aborted, owned = swept.aborted, owned_by(swept, ctx.s3_key)
    for key, upload_id in candidates:
        if upload_id in owned.upload_ids or key in owned.keys:
            continue  # a resumable upload's: judged by its record above
        if dry_run:
            aborted += 1
            continue
        try:
            await ctx.client.abort_multipart_upload(Bucket=ctx.bucket, Key=key, UploadId=upload_id)
            aborted += 1
        except S3_ERRORS as error:
            if error_code_of(error) != "NoSuchUpload":
                with ctx.errors(op="AbortMultipartUpload"):
                    raise
    return aborted

"""The records of S3 resumable uploads: one object each under
`<prefix>.storagegw/uploads/<handle>` (upload_records' JSON)."""

from __future__ import annotations

import logging
from typing import Any

from gateway.backends.s3.common import S3_ERRORS, S3Context, is_not_found
from gateway.backends.shared import upload_records
from gateway.backends.shared.resumable import Listed
from gateway.backends.shared.upload_records import (
    RECORD_CONTENT_TYPE,
    RECORDS_PREFIX,
    UploadRecord,
)
from gateway.domain.errors import GatewayError

log = logging.getLogger(__name__)


class Records:
    """The upload records in the bucket, under the backend's prefix."""

    def __init__(self, ctx: S3Context) -> None:
        self._ctx = ctx

    def _key(self, handle: str) -> str:
        return self._ctx.s3_key(RECORDS_PREFIX + handle)

    async def save(self, handle: str, record: UploadRecord) -> None:
        ctx = self._ctx
        with ctx.errors(record.key, op="PutObject (upload record)"):
            await ctx.client.put_object(
                Bucket=ctx.bucket,
                Key=self._key(handle),
                Body=upload_records.encode(record),
                ContentType=RECORD_CONTENT_TYPE,
            )

    async def read(self, handle: str, key: str = "") -> UploadRecord | None:
        """The record of handle; None when there is none (key: for errors)."""
        ctx, record_key = self._ctx, self._key(handle)
        try:
            response = await ctx.client.get_object(Bucket=ctx.bucket, Key=record_key)
        except S3_ERRORS as error:
            if is_not_found(error):
                return None
            with ctx.errors(key, op="GetObject (upload record)"):
                raise
        body = response["Body"]
        try:
            with ctx.errors(key, op="GetObject (upload record)"):
                data = await body.read()
        finally:
            body.close()
        return upload_records.decode(data, repr(record_key))

    async def delete(self, handle: str) -> None:
        ctx = self._ctx
        with ctx.errors(op="DeleteObject (upload record)"):
            await ctx.client.delete_object(Bucket=ctx.bucket, Key=self._key(handle))

    async def listing(self) -> list[Listed]:
        """Every readable record (an unreadable one is logged and skipped)."""
        ctx = self._ctx
        found: list[Listed] = []
        prefix = self._key("")
        args: dict[str, Any] = {"Bucket": ctx.bucket, "Prefix": prefix}
        while True:
            with ctx.errors(op="ListObjectsV2 (upload records)"):
                response = await ctx.client.list_objects_v2(**args)
            for item in response.get("Contents", []):
                handle = str(item["Key"])[len(prefix) :]
                try:
                    record = await self.read(handle)
                except GatewayError as error:
                    log.warning("skipping upload record %r: %s", handle, error.message)
                    continue
                if record is not None:
                    found.append(Listed(handle, record, record.created_unix))
            if not response.get("IsTruncated"):
                return found
            args["ContinuationToken"] = response["NextContinuationToken"]

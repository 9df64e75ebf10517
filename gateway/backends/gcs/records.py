"""The records of GCS resumable uploads: one object each under
`<prefix>.storagegw/uploads/<handle>` (upload_records' JSON), holding among
the driver's fields the upload's session URL, a bearer capability that is
never logged."""

from __future__ import annotations

import logging
from typing import Any

from gateway.backends.gcs.common import GCS_ERRORS, GcsContext, is_not_found
from gateway.backends.shared import upload_records
from gateway.backends.shared.upload_records import (
    RECORD_CONTENT_TYPE,
    RECORDS_PREFIX,
    UploadRecord,
)

log = logging.getLogger(__name__)

SESSION = "session"  # the record's driver field holding the session URL


class Records:
    """The upload records in the bucket, under the backend's prefix."""

    def __init__(self, ctx: GcsContext) -> None:
        self._ctx = ctx

    def _blob(self, handle: str) -> Any:
        return self._ctx.blob(RECORDS_PREFIX + handle)

    def _read_blocking(self, handle: str) -> bytes | None:
        try:
            data: bytes = self._blob(handle).download_as_bytes(retry=self._ctx.retry)
        except GCS_ERRORS as error:
            if is_not_found(error):
                return None
            raise
        return data

    async def read(self, key: str, handle: str) -> UploadRecord | None:
        """The record of handle; None when there is none (key: for errors)."""
        with self._ctx.errors(key, op="upload record read"):
            data = await self._ctx.run(self._read_blocking, handle)
        if data is None:
            return None
        return upload_records.decode(data, f"{RECORDS_PREFIX}{handle}")

    def write_blocking(self, handle: str, record: UploadRecord) -> None:
        """Store record (in the pool)."""
        self._blob(handle).upload_from_string(
            upload_records.encode(record),
            content_type=RECORD_CONTENT_TYPE,
            checksum=None,
            retry=self._ctx.retry,
        )

    async def write(self, handle: str, record: UploadRecord) -> None:
        with self._ctx.errors(record.key, op="upload record write"):
            await self._ctx.run(self.write_blocking, handle, record)

    async def delete(self, handle: str) -> None:
        try:
            await self._ctx.run(self._blob(handle).delete, retry=self._ctx.retry)
        except GCS_ERRORS as error:
            if not is_not_found(error):
                with self._ctx.errors(op="upload record delete"):
                    raise

    def _all_blocking(self) -> list[tuple[str, bytes]]:
        ctx = self._ctx
        found: list[tuple[str, bytes]] = []
        prefix = ctx.name(RECORDS_PREFIX)
        for blob in ctx.client.list_blobs(ctx.bucket, prefix=prefix, retry=ctx.retry):
            handle = str(blob.name)[len(prefix) :]
            try:
                found.append((handle, blob.download_as_bytes(retry=ctx.retry)))
            except GCS_ERRORS as error:
                if not is_not_found(error):  # removed meanwhile: skip it
                    raise
        return found

    async def all(self) -> list[tuple[str, UploadRecord]]:
        with self._ctx.errors(op="upload records list", missing="bucket"):
            found = await self._ctx.run(self._all_blocking)
        return [(h, upload_records.decode(d, f"{RECORDS_PREFIX}{h}")) for h, d in found]

    async def cancel_session(self, record: UploadRecord) -> None:
        """Cancel the record's session (GCS answers 499); failures are logged."""
        url = record.driver.get(SESSION)
        if not url:
            return
        try:
            await self._ctx.run(self._ctx.client._http.delete, str(url))
        except GCS_ERRORS as error:
            log.warning(
                "could not cancel the GCS upload session of %r: %s",
                record.key,
                type(error).__name__,
            )

"""A driver's resumable uploads and stale-upload cleaner, instrumented
(see gateway/telemetry/backend.py): uploads started and finished, the bytes
each checkpoint and commit makes durable, the sweeps and what they abort."""

from __future__ import annotations

from gateway.backends.base import (
    ForwardingUploadWriter,
    ResumableBackend,
    Resumed,
    StaleUploadCleaner,
    UploadWriter,
)
from gateway.domain.objects import Checksums, ObjectMeta, UploadStatus, WriteOptions
from gateway.telemetry.instruments import OK, CostClass
from gateway.telemetry.meter import BucketMeter, outcome_of

COMPLETED = "completed"
ABORTED = "aborted"


class InstrumentedUploads:
    """Implements ResumableBackend over a driver's."""

    def __init__(self, uploads: ResumableBackend, meter: BucketMeter) -> None:
        self._uploads = uploads
        self._meter = meter

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        with self._meter.call("start_upload", CostClass.A):
            handle = await self._uploads.start_upload(key, options, state)
        self._meter.upload_started()
        return handle

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        with self._meter.call("query_upload", CostClass.B):
            return await self._uploads.query_upload(key, handle)

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        with self._meter.call("resume_upload", CostClass.A):
            status, writer = await self._uploads.resume_upload(key, handle)
        if writer is None:
            return status, None
        return status, MeteredUploadWriter(writer, self._meter, status.persisted_size)

    async def abort_upload(self, key: str, handle: str) -> bool:
        with self._meter.call("abort_upload"):
            existed = await self._uploads.abort_upload(key, handle)
        if existed:
            self._meter.upload_finished(ABORTED)
        return existed


class MeteredUploadWriter(ForwardingUploadWriter):
    """An UploadWriter whose chunks count as received, whose checkpoints and
    commit count what became durable, and whose commit completes the upload."""

    def __init__(self, writer: UploadWriter, meter: BucketMeter, persisted: int) -> None:
        super().__init__(writer)
        self._meter = meter
        self._persisted = persisted

    async def write(self, data: bytes) -> None:
        await self._meter.write_chunk(self._writer.write, data)

    async def checkpoint(self, size: int, state: bytes) -> None:
        with self._meter.call("checkpoint", slow_only=True):
            await self._writer.checkpoint(size, state)
        self._durable(size)

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        with self._meter.call("commit_upload"):
            meta = await self._writer.commit(checksums)
        self._durable(meta.size)
        self._meter.stored(meta.size)
        self._meter.upload_finished(COMPLETED)
        return meta

    def _durable(self, size: int) -> None:
        self._meter.persisted(size - self._persisted)
        self._persisted = max(self._persisted, size)


class InstrumentedCleaner:
    """Implements StaleUploadCleaner over a driver's: each sweep counted with
    its outcome and what it aborted."""

    def __init__(self, cleaner: StaleUploadCleaner, meter: BucketMeter) -> None:
        self._cleaner = cleaner
        self._meter = meter

    async def abort_stale_uploads(self, older_than_s: float, *, dry_run: bool = False) -> int:
        if dry_run:  # a look, not a cleanup: the sweep counters stay as they are
            with self._meter.call("abort_stale_uploads"):
                return await self._cleaner.abort_stale_uploads(older_than_s, dry_run=True)
        try:
            with self._meter.call("abort_stale_uploads"):
                aborted = await self._cleaner.abort_stale_uploads(older_than_s)
        except Exception as error:
            self._meter.swept(outcome_of(error), 0)
            raise
        self._meter.swept(OK, aborted)
        return aborted

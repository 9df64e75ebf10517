"""Resumable uploads into a compressed bucket, stored as a Put stores the
same bytes: of a compressible type, in the seekable layout (frames written
as the upload goes, upload_writer.py); of any other type, as they are (the
driver's upload itself, under its own handle).

An upload of a compressible type is marked compressed from its start (the
driver's upload fixes the object's metadata then): when its first frame
saves too little, its frames hold the bytes in zstd's raw blocks instead,
where a Put would store the object unmarked."""

from __future__ import annotations

import dataclasses

from gateway.backends.base import ResumableBackend, Resumed
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import UploadStatus, WriteOptions
from gateway.layers.compression.layouts import Layouts, as_original, marked, user_metadata
from gateway.layers.compression.settings import CompressionSettings
from gateway.layers.compression.upload_progress import UploadHandle, UploadProgress
from gateway.layers.compression.upload_writer import CompressingUploadWriter


def _users(options: WriteOptions) -> WriteOptions:
    """options without any reserved entry a caller put in its metadata."""
    return dataclasses.replace(options, metadata=user_metadata(options.metadata))


class CompressedUploads:
    """capabilities.uploads of a CompressingBackend."""

    def __init__(
        self, inner: ResumableBackend, settings: CompressionSettings, layouts: Layouts
    ) -> None:
        self._inner = inner
        self._settings = settings
        self._layouts = layouts

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        options = _users(options)
        if not self._settings.compresses(options.content_type):
            return await self._inner.start_upload(key, options, state)
        # The stored size is not the declared one: no hint of it.
        stored = dataclasses.replace(options, metadata=marked(options.metadata), size_hint=None)
        progress = UploadProgress.initial(state)
        handle = await self._inner.start_upload(key, stored, progress.encode())
        settings = self._settings
        return UploadHandle(handle, settings.level, settings.frame_size).encoded()

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        ref = UploadHandle.decoded(handle)
        if ref is None:
            return await self._finished(key, await self._inner.query_upload(key, handle))
        status = await self._inner.query_upload(key, ref.inner)
        if status.complete is not None:
            return await self._finished(key, status)
        return _as_original(key, status)[0]

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        ref = UploadHandle.decoded(handle)
        if ref is None:
            status, writer = await self._inner.resume_upload(key, handle)
            if writer is None:
                return await self._finished(key, status), None
            return status, writer
        status, writer = await self._inner.resume_upload(key, ref.inner)
        if writer is None:
            return await self._finished(key, status), None
        try:
            original, progress = _as_original(key, status)
        except BaseException:
            await writer.suspend()
            raise
        min_savings = self._settings.min_savings
        compressing = CompressingUploadWriter(
            writer, key, ref, progress, min_savings, self._layouts.remember
        )
        return original, compressing

    async def abort_upload(self, key: str, handle: str) -> bool:
        ref = UploadHandle.decoded(handle)
        return await self._inner.abort_upload(key, handle if ref is None else ref.inner)

    async def _finished(self, key: str, status: UploadStatus) -> UploadStatus:
        """A complete upload answers with its object as callers see it."""
        if status.complete is None:
            return status
        try:
            complete = await self._layouts.original_of(key, status.complete)
        except GatewayError as error:
            if error.reason not in (Reason.OBJECT_NOT_FOUND, Reason.PRECONDITION_FAILED):
                raise
            # Replaced or deleted since: what the commit made, told plainly.
            complete = as_original(status.complete, None)
        return dataclasses.replace(status, complete=complete)


def _as_original(key: str, status: UploadStatus) -> tuple[UploadStatus, UploadProgress]:
    """An unfinished compressed upload's status in original bytes (the
    driver's counts stored ones), and its progress."""
    progress = UploadProgress.decode(status.state)
    if progress.stored_offset + progress.partial != status.persisted_size:
        raise GatewayError(
            Reason.INTERNAL,
            f"the compressed upload of {key!r} records {progress.stored_offset + progress.partial} "
            f"stored bytes, its backend {status.persisted_size}",
        )
    return UploadStatus(progress.offset, progress.gateway_state), progress

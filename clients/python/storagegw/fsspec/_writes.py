"""FileWrites: the calls a GatewayFile's writing makes (see _file.py): a
small file's one Put, a larger file's resumable upload, a part at a time."""

from __future__ import annotations

from storagegw._common import guess_content_type
from storagegw._types import UploadSession, UploadStatus
from storagegw.aio import AsyncClient
from storagegw.fsspec._entries import strip_url
from storagegw.fsspec._errors import os_errors
from storagegw.fsspec._upload import Bytes

__all__ = ["FileWrites"]


class FileWrites:
    """GatewayFileSystem's coroutines for GatewayFile's writes (its FileStore)."""

    async def _gateway(self) -> AsyncClient:
        raise NotImplementedError  # GatewayFileSystem's

    async def _put_whole(self, path: str, data: Bytes, creating: bool = False) -> None:
        """Store `data` in one Put; creating: only if nothing is there yet."""
        key = strip_url(path)
        client = await self._gateway()
        with os_errors(path, creating=creating):
            await client.put_bytes(
                key,
                data,
                content_type=guess_content_type(key) or None,
                if_none_match="*" if creating else None,
            )

    async def _start_upload(self, path: str, creating: bool) -> UploadSession:
        """The resumable upload a written file streams to (see _file.py)."""
        key = strip_url(path)
        client = await self._gateway()
        with os_errors(path, creating=creating):
            return await client.start_upload(
                key,
                content_type=guess_content_type(key) or None,
                if_none_match="*" if creating else None,
            )

    async def _write_part(
        self,
        path: str,
        upload_id: str,
        data: Bytes,
        offset: int,
        finish: bool,
        creating: bool,
    ) -> UploadStatus:
        """Send a part of a written file's upload, the last one if `finish`."""
        client = await self._gateway()
        with os_errors(path, creating=creating):
            return await client.write_upload(upload_id, data, offset=offset, finish=finish)

    async def _abort_upload(self, upload_id: str) -> None:
        await (await self._gateway()).abort_upload(upload_id)

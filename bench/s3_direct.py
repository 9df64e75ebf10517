"""The S3 section's baseline: aioboto3 called directly from the bench process.

One long-lived client on one event loop (like the gateway's), built with the
S3 driver's own session and botocore Config (gateway.backends.s3.session), from the
same S3Settings the gateway process reads from its environment.

Put does what the driver's writer does, without the gateway around it: one
PutObject up to one part; above, a multipart upload of part_size parts (the
last one shorter), at most `concurrency` UploadPart calls in flight and the
next part built meanwhile, so at most concurrency + 1 parts are in memory.
Parts are cut on the fly from the same chunks the gateway Put sends (one copy
per part). Get is one GetObject whose body is streamed with
iter_chunks(chunk_size) and hashed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from bench.data import BigData
from gateway.backends.s3.session import client_config, new_session
from gateway.backends.s3.settings import S3Settings

T = TypeVar("T")


class S3DirectClient:
    """aioboto3 on a private event loop; every method blocks until done."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._loop = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        try:
            self._client: Any = self._run(self._open())
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    async def _open(self) -> Any:
        s = self.settings
        client = new_session(s).client(
            "s3", endpoint_url=s.endpoint_url or None, config=client_config(s)
        )
        return await self._stack.enter_async_context(client)

    def close(self) -> None:
        try:
            # Interrupted mid-transfer (Ctrl-C, SIGTERM), its tasks re-raise on
            # this loop: the connections then go with the loop and this process.
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self._run(self._stack.aclose())
        finally:
            self._loop.close()

    # Put.

    def put(self, data: BigData, size: int, key: str) -> None:
        self._run(self._put(data, size, key))

    async def _put(self, data: BigData, size: int, key: str) -> None:
        s, client = self.settings, self._client
        if size <= s.part_size:
            await client.put_object(Bucket=s.bucket, Key=key, Body=data.span(size, 0, size))
            return
        created = await client.create_multipart_upload(Bucket=s.bucket, Key=key)
        upload_id = str(created["UploadId"])
        try:
            etags = await self._parts(data, size, key, upload_id)
            parts = [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]
            await client.complete_multipart_upload(
                Bucket=s.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    client.abort_multipart_upload(Bucket=s.bucket, Key=key, UploadId=upload_id)
                )
            raise

    async def _parts(self, data: BigData, size: int, key: str, upload_id: str) -> dict[int, str]:
        s, client = self.settings, self._client
        window = asyncio.Semaphore(s.concurrency)
        etags: dict[int, str] = {}

        async def upload(number: int, body: bytes) -> None:
            try:
                response = await client.upload_part(
                    Bucket=s.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                etags[number] = str(response["ETag"])
            finally:
                window.release()

        # A TaskGroup forgets finished tasks, so their parts are freed.
        async with asyncio.TaskGroup() as group:
            for number, start in enumerate(range(0, size, s.part_size), 1):
                body = data.span(size, start, min(size, start + s.part_size))
                await window.acquire()
                group.create_task(upload(number, body))
                del body
        return etags

    # Get.

    def get_sha256(self, key: str, size: int, chunk_size: int) -> bytes:
        """SHA-256 of the object as read back; its size must be size."""
        return self._run(self._get(key, size, chunk_size))

    async def _get(self, key: str, size: int, chunk_size: int) -> bytes:
        s = self.settings
        response = await self._client.get_object(Bucket=s.bucket, Key=key)
        body = response["Body"]
        sha = hashlib.sha256()
        total = 0
        try:
            async for piece in body.iter_chunks(chunk_size):
                sha.update(piece)
                total += len(piece)
        finally:
            body.close()
        if total != size:
            raise RuntimeError(f"direct GetObject of {key!r} gave {total} bytes, expected {size}")
        return sha.digest()

    # Housekeeping (untimed).

    def delete(self, *keys: str) -> None:
        async def delete_all() -> None:
            for key in keys:
                await self._client.delete_object(Bucket=self.settings.bucket, Key=key)

        self._run(delete_all())

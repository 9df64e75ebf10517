"""The GCS section's baseline: google-cloud-storage called directly from the bench process.

One client built by the GCS driver's own connect() (credentials, HTTP session
with its connection pool, retry deadline) from the same GcsSettings the
gateway process reads from its environment, so both talk to the emulator with
the same library, settings and chunk size.

Put does what the driver's writer does, without the gateway around it: up to
one chunk, one upload request; above, a resumable upload through the
library's own streaming writer (Blob.open("wb")) with the settings' chunk
size, no client-side checksum (the driver sends none either) and the same
retry, fed the same 1 MiB pieces the gateway Put sends: at most about one
chunk is held. Get reads the object's metadata (pinning its generation, as
the driver's reader does), then ranged GETs of one chunk size each
(download_as_bytes, raw, no checksum: as the driver), the next window fetched
in a thread while the current one is hashed: at most two windows in memory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
from typing import Any

from google.api_core import exceptions as api_exceptions

from bench.data import BigData
from gateway.backends.gcs.connection import connect
from gateway.backends.gcs.settings import GcsSettings
from gateway.domain.objects import DEFAULT_CONTENT_TYPE


class GcsDirectClient:
    """google-cloud-storage, blocking; every method returns when done."""

    def __init__(self, settings: GcsSettings) -> None:
        self.settings = settings
        self._connection = connect(settings)
        self._bucket: Any = self._connection.client.bucket(settings.bucket)
        self._retry = self._connection.retry
        # Fetches the next download window while the current one is hashed.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gcs-direct")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._connection.session.close()

    def _blob(self, key: str) -> Any:
        return self._bucket.blob(self.settings.prefix + key)

    # Put.

    def put(self, data: BigData, size: int, key: str) -> None:
        chunk_size = self.settings.chunk_size
        blob = self._blob(key)
        if size <= chunk_size:
            blob.upload_from_string(
                data.span(size, 0, size),
                content_type=DEFAULT_CONTENT_TYPE,
                checksum=None,
                retry=self._retry,
            )
            return
        with blob.open(
            "wb",
            chunk_size=chunk_size,
            content_type=DEFAULT_CONTENT_TYPE,
            checksum=None,
            retry=self._retry,
        ) as writer:
            for piece in data.raw_chunks(size):
                writer.write(piece)

    # Get.

    def get_sha256(self, key: str, size: int, chunk_size: int) -> bytes:
        """SHA-256 of the object as read back; its size must be size. (chunk_size,
        the gRPC message size, does not apply: windows are the GCS chunk size.)"""
        name = self.settings.prefix + key
        blob = self._bucket.get_blob(name, retry=self._retry)  # pinned to its generation
        if blob is None or blob.size != size:
            found = "no object" if blob is None else f"{blob.size} bytes"
            raise RuntimeError(f"direct GCS object {key!r}: {found}, expected {size} bytes")
        window = self.settings.chunk_size
        retry = self._retry

        def fetch(start: int) -> bytes:
            end = min(size, start + window)
            data: bytes = blob.download_as_bytes(
                start=start, end=end - 1, raw_download=True, checksum=None, retry=retry
            )
            if len(data) != end - start:
                raise RuntimeError(
                    f"direct GCS download of {key!r} at {start} gave {len(data)} bytes, "
                    f"expected {end - start}"
                )
            return data

        sha = hashlib.sha256()
        position = 0
        pending = self._pool.submit(fetch, 0) if size else None
        try:
            while pending is not None:
                data = pending.result()
                position += len(data)
                pending = self._pool.submit(fetch, position) if position < size else None
                sha.update(data)  # hashlib releases the GIL: the fetch goes on meanwhile
                del data
        finally:
            if pending is not None:
                pending.cancel()
        return sha.digest()

    # Housekeeping (untimed).

    def delete(self, *keys: str) -> None:
        for key in keys:
            with contextlib.suppress(api_exceptions.NotFound):
                self._blob(key).delete(retry=self._retry)

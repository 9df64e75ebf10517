"""What unfinished resumable uploads hold per bucket, and the operator's cap
on it (GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES).

An abandoned upload holds its bytes (memory, or disk on the local backend)
until it is aborted or cleaned up as stale, by default after 7 days. With a
cap, StartUpload and every chunk a Put continuation writes are refused with
QUOTA_EXCEEDED once the bucket's unfinished uploads would hold more.

The drivers that count cheaply (memory: the bytes held; local: the upload
data files' sizes) are asked at StartUpload and at the start of each Put
continuation; the chunks a stream writes after that are added here, so a
stream is never asked to rescan. Drivers that cannot count cheaply (S3, GCS:
one read per upload record) are neither counted nor capped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.backends.base import Backend
from gateway.core.buckets import Buckets
from gateway.domain.errors import GatewayError, Reason

log = logging.getLogger("storagegw")


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A bucket's unfinished uploads and the bytes they hold."""

    uploads: int
    bytes: int


async def unfinished_of(backend: Backend) -> Unfinished | None:
    """What backend's unfinished uploads hold; None where it is not counted."""
    counter = backend.capabilities.upload_counter
    if counter is None:
        return None
    counted = await counter.unfinished_uploads()
    return None if counted is None else Unfinished(*counted)


async def unfinished_by_bucket(buckets: Buckets) -> dict[str, Unfinished]:
    """{bucket: what its unfinished uploads hold} for the buckets counted."""
    found: dict[str, Unfinished] = {}
    for name, backend in buckets:
        counted = await unfinished_of(backend)
        if counted is not None:
            found[name] = counted
    return found


def describe(bucket: str, held: Unfinished, cap: int | None) -> str:
    limit = "no cap" if cap is None else f"cap {cap} bytes"
    return f"bucket {bucket}: {held.uploads} unfinished upload(s) hold {held.bytes} bytes ({limit})"


def over_cap(bucket: str, cap: int, held: int, needed: int) -> GatewayError:
    return GatewayError(
        Reason.QUOTA_EXCEEDED,
        f"unfinished resumable uploads in bucket {bucket!r} hold {held} bytes; {needed} more "
        f"would exceed the cap of {cap} bytes (GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES, or the "
        "bucket's max_unfinished_upload_bytes): finish "
        "or abort some uploads first",
        bucket=bucket,
        quota=cap,
        needed=held + needed,
    )


class UnfinishedBudget:
    """The caps on what unfinished uploads hold, per bucket (a bucket not
    named has no cap)."""

    def __init__(self, caps: Mapping[str, int]) -> None:
        self._caps = dict(caps)
        # Per bucket: bytes held as last counted plus what streams wrote since.
        self._held: dict[str, int] = {}

    async def _refresh(self, bucket: str, backend: Backend) -> Unfinished | None:
        counted = await unfinished_of(backend)
        if counted is not None:
            self._held[bucket] = counted.bytes
        return counted

    async def check_start(self, bucket: str, backend: Backend, size_hint: int | None) -> None:
        """QUOTA_EXCEEDED if the bucket's unfinished uploads are at the cap,
        or would pass it once a new one holds size_hint bytes."""
        cap = self._caps.get(bucket)
        if cap is None:
            return
        counted = await self._refresh(bucket, backend)
        if counted is None:
            return
        needed = max(size_hint or 0, 1)
        if counted.bytes + needed > cap:
            log.warning("%s: StartUpload refused", describe(bucket, counted, cap))
            raise over_cap(bucket, cap, counted.bytes, needed)

    async def stream_started(self, bucket: str, backend: Backend) -> bool:
        """Count the bucket afresh for a Put continuation; whether its
        chunks are to be charged."""
        return bucket in self._caps and await self._refresh(bucket, backend) is not None

    def charge(self, bucket: str, size: int) -> None:
        """Count size more bytes written; QUOTA_EXCEEDED past the cap."""
        cap = self._caps.get(bucket)
        if cap is None:
            return
        held = self._held.get(bucket, 0)
        if held + size > cap:
            raise over_cap(bucket, cap, held, size)
        self._held[bucket] = held + size

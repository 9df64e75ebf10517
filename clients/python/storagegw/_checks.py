"""Operations on the gateway's upload checks: finishing a direct upload
(finalize_upload) and scanning stored objects again (scan_objects); with
their result types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storagegw import _common
from storagegw._base import ClientBase
from storagegw._effects import Call, Flow
from storagegw._op import operation
from storagegw._types import ObjectInfo
from storagegw.v1 import storage_pb2

__all__ = ["ScanFind", "ScanReport", "finalize_upload", "scan_objects"]


@dataclass(frozen=True, slots=True)
class ScanFind:
    """An object a rescan found infected: gone from `key`, its bytes kept at
    quarantine_bucket/quarantine_key (both empty: deleted)."""

    key: str
    signature: str
    quarantine_bucket: str = ""
    quarantine_key: str = ""


@dataclass(slots=True)
class ScanReport:
    """What scan_objects found: objects scanned, found clean (marked_clean
    of them newly marked scan=clean), changed meanwhile (not judged), and
    the infected ones."""

    scanned: int = 0
    clean: int = 0
    marked_clean: int = 0
    changed: int = 0
    infected: list[ScanFind] = field(default_factory=list)

    def add(self, page: storage_pb2.ScanObjectsResponse) -> None:
        self.scanned += page.scanned
        self.clean += page.clean
        self.marked_clean += page.marked_clean
        self.changed += page.changed
        self.infected += [
            ScanFind(find.key, find.signature, find.quarantine_bucket, find.quarantine_key)
            for find in page.infected
        ]


@operation()
def finalize_upload(
    self: ClientBase,
    pending_upload: str,
    *,
    bucket: str | None = None,
    if_none_match: str | None = None,
    if_match: str | None = None,
    if_generation_match: int | None = None,
) -> Flow[ObjectInfo]:
    """Finish a direct upload: `pending_upload` is SignedUrl.pending_upload
    of the URL the bytes were uploaded with. The gateway checks them (upload
    policy, malware scan) and returns the object now at its key, or raises
    why not (MalwareDetected, TypeNotAllowed...). if_none_match="*" only
    creates. Calling it again after it succeeded returns the object."""
    conditions = _common.preconditions(
        if_none_match=if_none_match, if_match=if_match, if_generation_match=if_generation_match
    )
    request = storage_pb2.FinalizeUploadRequest(
        bucket=self._bucket(bucket), pending_upload=pending_upload, preconditions=conditions
    )
    return _finalize(request, self.timeout)


def _finalize(
    request: storage_pb2.FinalizeUploadRequest, timeout: float | None
) -> Flow[ObjectInfo]:
    response: storage_pb2.FinalizeUploadResponse = yield Call("FinalizeUpload", request, timeout)
    return ObjectInfo.from_proto(response.object)


@operation()
def scan_objects(
    self: ClientBase,
    prefix: str = "",
    *,
    bucket: str | None = None,
    page_size: int | None = None,
) -> Flow[ScanReport]:
    """Scan every object under `prefix` again with the bucket's malware
    scanner (an administrative call): infected ones go to quarantine, clean
    ones stored unscanned are marked scan=clean. One call per page of
    page_size objects (the gateway's default when None)."""
    request = storage_pb2.ScanObjectsRequest(
        bucket=self._bucket(bucket), prefix=prefix, page_size=page_size or 0
    )
    return _scan(request, self.timeout)


def _scan(request: storage_pb2.ScanObjectsRequest, timeout: float | None) -> Flow[ScanReport]:
    report = ScanReport()
    while True:
        page: storage_pb2.ScanObjectsResponse = yield Call("ScanObjects", request, timeout)
        report.add(page)
        if not page.next_page_token:
            return report
        request.page_token = page.next_page_token

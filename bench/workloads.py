"""What `python -m bench` can run: the local workloads, the sections comparing the
gateway with a storage server's own client, and the sections with a report of their
own, in the order they run."""

from __future__ import annotations

from typing import Any, TypeAlias

from bench.auth import AuthSection
from bench.compression import CompressionSection
from bench.dedup import DedupSection
from bench.gcs import GcsSection
from bench.limits import LimitsSection
from bench.peers import PeersSection
from bench.policy import PolicySection
from bench.remote import RemoteSection
from bench.resumable import ResumableSection
from bench.s3 import S3Section
from bench.scan import ScanSection
from bench.telemetry import TelemetrySection
from bench.workers import WorkersSection

LOCAL_WORKLOADS = ("put", "get", "small")
# The sections comparing the gateway with a storage server's own client.
REMOTE: dict[str, type[RemoteSection[Any]]] = {"s3": S3Section, "gcs": GcsSection}
# The sections side by side: variants against a baseline, storagegw against its peers.
SIDE_BY_SIDE: dict[str, type[AuthSection | PeersSection | WorkersSection]] = {
    "auth": AuthSection,
    "telemetry": TelemetrySection,
    "policy": PolicySection,  # the upload policy's cost on a 4 KiB Put
    "peers": PeersSection,
    "workers": WorkersSection,  # run by --workers (with small), not named in --only
}
ReportedSection: TypeAlias = (
    ResumableSection
    | LimitsSection
    | AuthSection
    | PeersSection
    | WorkersSection
    | ScanSection
    | CompressionSection
    | DedupSection
)
# The sections with a table and a JSON file of their own, in the order they run.
REPORTED: dict[str, type[ReportedSection]] = {
    "resumable": ResumableSection,
    "limits": LimitsSection,
    **SIDE_BY_SIDE,
    # Malware scanning: a big Put to a scanning bucket against a plain one.
    "scan": ScanSection,
    # A compressed bucket against a plain one: a JSON log's Put and Get.
    "compression": CompressionSection,
    # Content-addressed dedup: many identical Puts, and a big Put/Get, against a plain bucket.
    "dedup": DedupSection,
}
WORKLOADS = (*LOCAL_WORKLOADS, *REMOTE, *REPORTED)
WORKLOADS = tuple(name for name in WORKLOADS if name != "workers")

"""Malware scanning as the core sees it: a Scanner (clamd, in
gateway.scanning.clamd, built by the composition root; the core never
imports it), a bucket's ScanPolicy, and the scan status every stored object
of a scanning bucket carries in its user metadata.

A scan is a session per object: feed() each chunk as it is written, then
verdict(). A scanner that cannot answer (unreachable, timing out, killed
mid-scan, over its stream limit) raises SCANNER_UNAVAILABLE, never INTERNAL.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.backends.base import Backend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import ListPage, ObjectMeta
from gateway.domain.verdicts import CLEAN as CLEAN
from gateway.domain.verdicts import Verdict as Verdict

# The user metadata names the gateway writes on a scanning bucket's objects
# (and on quarantined ones); a caller's values of them are dropped.
SCAN_STATUS = "scan"
SCAN_TIME = "scan-time"
SCAN_SCANNER = "scan-scanner"
SCAN_SIGNATURE = "scan-signature"
QUARANTINE_FROM_BUCKET = "quarantine-from-bucket"
QUARANTINE_FROM_KEY = "quarantine-from-key"
RESERVED_METADATA = frozenset(
    {
        SCAN_STATUS,
        SCAN_TIME,
        SCAN_SCANNER,
        SCAN_SIGNATURE,
        QUARANTINE_FROM_BUCKET,
        QUARANTINE_FROM_KEY,
    }
)

DEFAULT_STAGING_PREFIX = ".storagegw-pending/"


class ScanStatus(enum.StrEnum):
    CLEAN = "clean"
    # Stored without a verdict (the scanner was unavailable and the bucket's
    # on_unavailable is "store"): for a later rescan.
    SKIPPED = "skipped"
    INFECTED = "infected"


class ScanSession(Protocol):
    """One object's scan: its bytes in order, then the verdict. Exactly one
    of verdict or close ends it (close after a verdict is harmless)."""

    async def feed(self, data: bytes) -> None:
        """Send data to the scanner; SCANNER_UNAVAILABLE if it cannot take it."""

    async def verdict(self) -> Verdict:
        """End the stream and wait for the answer; SCANNER_UNAVAILABLE if none."""

    async def close(self) -> None:
        """Abandon the scan (the write failed); idempotent."""


class Scanner(Protocol):
    @property
    def name(self) -> str:
        """What the scanner is called in errors and logs (its address)."""

    async def open(self) -> ScanSession:
        """Start a scan; SCANNER_UNAVAILABLE when the scanner cannot be reached."""

    async def version(self) -> str:
        """The scanner's version (and its signatures'), for the scan metadata."""


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """A scanning bucket's settings, with its scanner."""

    scanner: Scanner
    # On an unavailable scanner: store the object marked scan=skipped
    # (True), or refuse the write with SCANNER_UNAVAILABLE (False, the default).
    store_unscanned: bool = False
    # Where infected bytes go (a configured bucket, and its driver); None:
    # they are deleted.
    quarantine_bucket: str | None = None
    quarantine: Backend | None = None
    # Where writes land before their verdict: hidden from ordinary calls.
    staging_prefix: str = DEFAULT_STAGING_PREFIX

    def hides(self, key: str) -> bool:
        """Whether key is a pending one (under the staging prefix)."""
        return key.startswith(self.staging_prefix)

    def pending_key(self) -> str:
        """A new, unique pending key."""
        return f"{self.staging_prefix}{uuid.uuid4().hex}"


def hidden_key(policy: ScanPolicy, key: str) -> None:
    """INVALID_KEY for a key (or listing prefix) under the staging prefix:
    pending objects are the gateway's own until their verdict."""
    if policy.hides(key):
        raise GatewayError(
            Reason.INVALID_KEY,
            f"keys under {policy.staging_prefix!r} are reserved for writes awaiting "
            "their malware scan",
            key=key,
        )


def without_pending(policy: ScanPolicy, page: ListPage) -> ListPage:
    """A listing page less the pending objects (and their common prefix)."""
    prefix = policy.staging_prefix
    objects = [meta for meta in page.objects if not meta.key.startswith(prefix)]
    prefixes = [p for p in page.common_prefixes if not p.startswith(prefix)]
    if len(objects) == len(page.objects) and len(prefixes) == len(page.common_prefixes):
        return page
    return ListPage(objects, prefixes, page.next_page_token)


def now() -> str:
    """The time a scan status is written with (UTC, RFC 3339)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def without_reserved(metadata: Mapping[str, str]) -> dict[str, str]:
    """Metadata less the names the gateway writes itself."""
    return {k: v for k, v in metadata.items() if k.lower() not in RESERVED_METADATA}


def scan_status(meta: ObjectMeta) -> dict[str, str]:
    """The scan status an object carries (its reserved metadata)."""
    return {k: v for k, v in meta.metadata.items() if k.lower() in RESERVED_METADATA}


def with_status(
    metadata: Mapping[str, str], status: ScanStatus, scanner: str, **more: str
) -> dict[str, str]:
    """metadata (a caller's reserved names dropped) with a scan status."""
    marked = without_reserved(metadata)
    marked.update({SCAN_STATUS: status.value, SCAN_TIME: now(), SCAN_SCANNER: scanner})
    marked.update(more)
    return marked

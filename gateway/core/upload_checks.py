"""What a write is checked against besides its checksums: inspectors, which the
ingest pump (gateway.core.ingest.Pump) shows an object's first bytes before
any byte is written, and asks once more before the object is committed.

The bucket's upload policy (gateway.domain.upload_policy) is one: what the
request says is checked when the inspector is made (upload_inspectors: before
any byte is read), the type sniffed from the first bytes when they have
arrived, the final size before the commit. Another check of the bytes (a
malware scanner, say) is another Inspector in the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateway.core.buckets import Target
from gateway.core.sniffing import SNIFF_WINDOW, sniff_type
from gateway.domain.errors import Reason
from gateway.domain.upload_policy import UploadPolicy

# The reasons an inspector refuses an object for: the content is what it is,
# so a resumable upload refused for one of them is aborted, not left to resume.
REFUSALS = frozenset(
    {
        Reason.TYPE_NOT_ALLOWED,
        Reason.TYPE_MISMATCH,
        Reason.OBJECT_TOO_SMALL,
        Reason.KEY_SUFFIX_NOT_ALLOWED,
        Reason.METADATA_REQUIRED,
        Reason.MALWARE_DETECTED,
    }
)


class Inspector(Protocol):
    """One write's check of its bytes; raises GatewayError to refuse."""

    # How many first bytes it must see before any byte is written (0: none).
    @property
    def head_size(self) -> int: ...

    # The largest object it accepts (None: no bound of its own).
    @property
    def max_size(self) -> int | None: ...

    async def check_head(self, head: bytes) -> None:
        """The object's first head_size bytes (all of them, when it is
        smaller), before any is written."""

    async def check_end(self, size: int) -> None:
        """The whole object has arrived (size bytes) and checks out: the last
        word before it is committed."""


class PolicyInspector:
    """A bucket's upload policy, for one write whose request it has passed."""

    def __init__(self, policy: UploadPolicy, bucket: str, content_type: str, *, sniff: bool):
        self._policy = policy
        self._bucket = bucket
        self._content_type = content_type
        self.head_size = SNIFF_WINDOW if sniff and policy.sniffs else 0
        self.max_size = policy.max_size

    async def check_head(self, head: bytes) -> None:
        if self.head_size:
            sniffed = await sniff_type(head)
            self._policy.check_sniffed(self._bucket, self._content_type, sniffed)

    async def check_end(self, size: int) -> None:
        self._policy.check_size(self._bucket, size)


def upload_inspectors(
    target: Target,
    content_type: str,
    metadata: Mapping[str, str],
    size: int | None,
    *,
    sniff: bool = True,
) -> tuple[Inspector, ...]:
    """The inspectors of a write to target of an object declared so (size:
    None when not declared), once the request itself passes the bucket's
    policy (else its refusal, before any byte is read). sniff=False: the
    first bytes were checked before (a resumable upload continued past them)."""
    policy = target.policy
    if policy is None:
        return ()
    policy.check_request(target.bucket, target.key, content_type, metadata, size)
    return continued_inspectors(target, content_type, sniff=sniff)


def continued_inspectors(
    target: Target, content_type: str, *, sniff: bool
) -> tuple[Inspector, ...]:
    """The inspectors of a stream continuing a resumable upload of an object
    declared content_type, whose request passed at StartUpload. sniff=False:
    its first bytes were checked by the stream that persisted them."""
    policy = target.policy
    if policy is None:
        return ()
    return (PolicyInspector(policy, target.bucket, content_type, sniff=sniff),)


def bounded(max_size: int | None, inspectors: tuple[Inspector, ...]) -> int | None:
    """The smallest of max_size and the inspectors' bounds (None: none)."""
    bounds = [b for b in (max_size, *(i.max_size for i in inspectors)) if b is not None]
    return min(bounds) if bounds else None

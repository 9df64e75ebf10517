"""How the S3 driver's writes (PutObject, CompleteMultipartUpload, CopyObject)
carry their conditions.

Create-only (if_none_match "*" or if_generation_match 0) and if_match are
sent to S3 as If-None-Match/If-Match, which S3 evaluates atomically.
Generation conditions and if_none_match with an ETag cannot be expressed to
S3: they are checked against a HEAD just before the write, which is NOT
atomic (another writer can slip in between). Every condition on a multipart
upload is checked by that HEAD too (and still sent to S3), because
S3-compatible stores that predate conditional writes (Ceph RGW 16, for one)
ignore If-None-Match and If-Match on CompleteMultipartUpload: there,
create-only of a multipart object is not atomic.
"""

from __future__ import annotations

from gateway.backends.s3.common import unquote_etag
from gateway.domain.objects import Conditions


def write_conditions(conditions: Conditions) -> tuple[dict[str, str], str]:
    """(If-Match/If-None-Match arguments S3 evaluates itself, the name of the
    condition a 412 means)."""
    if conditions.if_none_match == "*":
        return {"IfNoneMatch": "*"}, "if_none_match"
    if conditions.if_generation_match == 0:
        return {"IfNoneMatch": "*"}, "if_generation_match"
    if conditions.if_match:
        # Unquoted: Ceph RGW (16) compares the header with its ETag verbatim
        # and refuses the quoted form; moto and MinIO accept both.
        return {"IfMatch": unquote_etag(conditions.if_match)}, "if_match"
    return {}, ""


def needs_head_check(conditions: Conditions, multipart: bool) -> bool:
    """Whether conditions need a HEAD before writing (see the module doc)."""
    return (
        conditions.if_generation_match not in (None, 0)
        or conditions.if_generation_not_match is not None
        or conditions.if_none_match not in ("", "*")
        or (multipart and conditions.any)
        # Both kinds at once: S3 gets only the create-only one.
        or (bool(conditions.if_match) and "IfNoneMatch" in write_conditions(conditions)[0])
    )

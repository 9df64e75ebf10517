"""What the drivers whose storage signs URLs (S3, GCS) share: both sign V4
URLs for at most seven days, write POST policies in the same condition
language and answer them as a URL and form fields, and neither can bound the
body of a signed PUT. Each driver keeps its own signing call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.domain.errors import GatewayError, Reason, unsupported
from gateway.domain.objects import Presigned, PresignRequest

MAX_PRESIGN_S = 7 * 24 * 3600  # V4 signing's limit (SigV4, GCS V4)


def check_expiry(request: PresignRequest, store: str) -> None:
    """INVALID_EXPIRY unless V4 signing can give request its lifetime; store
    names the storage in the message ("S3", "GCS")."""
    if not 1 <= request.expires_in_s <= MAX_PRESIGN_S:
        raise GatewayError(
            Reason.INVALID_EXPIRY,
            f"{store} signed URLs last between 1 second and 7 days, not {request.expires_in_s} s",
        )


def download_disposition(request: PresignRequest) -> str:
    """The Content-Disposition of a download: an attachment named
    request.filename, or the key's last segment, with an ASCII fallback."""
    filename = request.filename or request.key.rsplit("/", 1)[-1]
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def put_headers(request: PresignRequest, kind: str) -> dict[str, str]:
    """The headers a signed PUT's holder must send: its content type, which
    the signature binds. max_size is refused: a signed PUT cannot bound the
    body's size (a POST policy can)."""
    if request.max_size is not None:
        raise unsupported(option="max_size on a signed PUT URL (use POST)", backend=kind)
    return {"Content-Type": request.content_type} if request.content_type else {}


def post_policy(request: PresignRequest, largest_object: int) -> tuple[dict[str, str], list[Any]]:
    """The form fields and conditions of a POST policy, which the storage
    checks the form against before it stores anything: the size range (up to
    largest_object, the storage's own limit, without a max_size) and the
    content type. The signing library adds the exact key."""
    fields: dict[str, str] = {}
    conditions: list[Any] = [
        [
            "content-length-range",
            request.min_size or 0,
            largest_object if request.max_size is None else request.max_size,
        ]
    ]
    if request.content_type:
        fields["Content-Type"] = request.content_type
        conditions.append({"Content-Type": request.content_type})
    return fields, conditions


def signed_post(policy: Mapping[str, Any]) -> Presigned:
    """A signed POST policy as both libraries return it ({"url", "fields"})."""
    return Presigned(
        str(policy["url"]), form_fields={k: str(v) for k, v in policy["fields"].items()}
    )

"""The SignUrl operation: the gateway's policy for what a URL may allow, then
the signature of whoever will serve the URL, the storage itself (a backend's
presigner) or the gateway's own listener (UrlSigner)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.core.buckets import Action, Buckets
from gateway.core.signing import SignedMethod, SignedUrl, UrlSigner
from gateway.domain.errors import invalid_argument
from gateway.domain.objects import PresignRequest


@dataclass(frozen=True, slots=True)
class SignSpec:
    """What a caller asks a signed URL to allow. method None: the request
    named no method the gateway signs."""

    bucket: str
    key: str
    method: SignedMethod | None
    # None: the signer's default lifetime.
    expires_in_s: float | None = None
    download: bool = False
    filename: str = ""
    content_type: str = ""
    max_size: int | None = None
    min_size: int | None = None


async def sign_url(
    buckets: Buckets, signer: UrlSigner, spec: SignSpec, *, max_object_size: int | None
) -> SignedUrl:
    """A URL allowing spec.method on spec's object until it expires.

    max_object_size is the gateway's own limit: it goes into a POST policy,
    which whoever serves the URL checks."""
    target = buckets.open(spec.bucket, spec.key, Action.SIGN)
    if spec.method is None:
        raise invalid_argument(
            "method must be SIGNED_METHOD_GET, SIGNED_METHOD_PUT or SIGNED_METHOD_POST"
        )
    max_size = spec.max_size
    if spec.method == "POST" and max_object_size is not None:
        # A POST policy is checked by whoever serves the URL, which may be
        # the storage itself: the gateway's own limit goes into it.
        max_size = max_object_size if max_size is None else min(max_size, max_object_size)
    wanted = signer.check(
        spec.method,
        spec.expires_in_s,
        download=spec.download,
        filename=spec.filename,
        content_type=spec.content_type,
        max_size=max_size,
        min_size=spec.min_size,
    )
    presigner = target.backend.capabilities.presigner
    if presigner is None:
        return signer.sign_checked(target.bucket, target.key, wanted)
    presigned = await presigner.sign_url(
        PresignRequest(
            target.key,
            wanted.method,
            math.ceil(wanted.expires_in_s),
            download=wanted.download,
            filename=wanted.filename,
            content_type=wanted.content_type,
            max_size=wanted.max_size,
            min_size=wanted.min_size,
        )
    )
    return SignedUrl(
        presigned.url,
        wanted.method,
        wanted.expire_time_unix,
        presigned.headers,
        presigned.form_fields,
    )

"""The SignUrl operation: the gateway's policy for what a URL may allow, then
the signature of whoever will serve the URL, the storage itself (a backend's
presigner) or the gateway's own listener (UrlSigner)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from gateway.core.buckets import Action, Buckets
from gateway.core.pending_uploads import goes_direct, new_pending
from gateway.core.signing import SignedMethod, SignedUrl, UrlSigner
from gateway.domain.errors import invalid_argument
from gateway.domain.objects import PresignRequest, UrlOptions


@dataclass(frozen=True, slots=True)
class SignSpec(UrlOptions):
    """What a caller asks a signed URL to allow, with its options
    (keyword-only). method None: the request named no method the gateway
    signs."""

    bucket: str
    key: str
    method: SignedMethod | None
    # None: the signer's default lifetime.
    expires_in_s: float | None = None


async def sign_url(
    buckets: Buckets, signer: UrlSigner, spec: SignSpec, *, max_object_size: int | None
) -> SignedUrl:
    """A URL allowing spec.method on spec's object until it expires.

    max_object_size is the gateway's own limit: it goes into a POST policy,
    which whoever serves the URL checks."""
    # The scope names the access the URL hands on (GET: read, PUT and POST:
    # write), which the guards require of the signer besides sign itself.
    target = buckets.open(spec.bucket, spec.key, Action.SIGN, scope=spec.method or "")
    if spec.method is None:
        raise invalid_argument(
            "method must be SIGNED_METHOD_GET, SIGNED_METHOD_PUT or SIGNED_METHOD_POST"
        )
    options: UrlOptions = spec
    if spec.method == "POST" and max_object_size is not None:
        # A POST policy is checked by whoever serves the URL, which may be
        # the storage itself: the gateway's own limit goes into it.
        asked = spec.max_size
        options = replace(
            spec, max_size=max_object_size if asked is None else min(asked, max_object_size)
        )
    wanted = signer.check(spec.method, spec.expires_in_s, options)
    presigner = target.backend.capabilities.presigner
    if presigner is None:
        return signer.sign_checked(target.bucket, target.key, wanted, target.principal)
    key = pending = ""
    if wanted.method in ("PUT", "POST") and goes_direct(target):
        # The bytes will not pass the gateway: they land under a hidden
        # pending key until FinalizeUpload (or the sweep) checks them.
        key = pending = new_pending(target).pending_key
    presigned = await presigner.sign_url(
        PresignRequest(
            key or target.key,
            wanted.method,
            math.ceil(wanted.expires_in_s),
            **wanted.option_values(),
        )
    )
    return SignedUrl(
        presigned.url,
        wanted.method,
        wanted.expire_time_unix,
        presigned.headers,
        presigned.form_fields,
        pending,
    )

"""The SignUrl operation: the gateway's policy for what a URL may allow, then
the signature of whoever will serve the URL (its route): the CDN in front of
the bucket (a CdnSigner; reads only), the storage itself (a backend's
presigner) or the gateway's own listener (UrlSigner)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from gateway.core.buckets import Action, Buckets, Target
from gateway.core.pending_uploads import goes_direct, new_pending
from gateway.core.signing import SignedMethod, SignedUrl, UrlSigner
from gateway.domain.errors import ErrorTemplate, Reason, invalid_argument
from gateway.domain.objects import PresignRequest, UrlOptions

# Who serves a URL; "" asks for the bucket's default.
Route = Literal["", "cdn", "gateway", "store"]

route_not_available = ErrorTemplate(
    Reason.ROUTE_NOT_AVAILABLE,
    "bucket {bucket!r} has no {route} route for signed URLs: {why}",
    metadata=("bucket", "route"),
)
route_method_not_allowed = ErrorTemplate(
    Reason.ROUTE_METHOD_NOT_ALLOWED,
    "a {route} URL serves reads only (GET), not {method}: sign uploads for the gateway "
    "or the storage",
    fixed={"route": "cdn"},
)


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
    route: Route = ""
    # CDN URLs only: the address (or range) the URL is bound to; "": none.
    client_ip: str = ""
    # CDN URLs only: when the URL starts to work (unix seconds; None: at once).
    not_before_unix: int | None = None


def _route(spec: SignSpec, target: Target) -> Route:
    """The route that serves spec's URL: the one asked for, if the bucket
    has it and it can serve the method, or the bucket's default."""
    has_store = target.backend.capabilities.presigner is not None
    if spec.route == "":
        if target.cdn is not None and spec.method == "GET" and not spec.download:
            return "cdn"
        return "store" if has_store else "gateway"
    if spec.route == "cdn":
        if spec.method != "GET":
            raise route_method_not_allowed(method=spec.method)
        if target.cdn is None:
            raise route_not_available(
                bucket=target.bucket, route="cdn", why="no CDN is configured in front of it"
            )
        if spec.download:
            raise invalid_argument("download and filename apply to gateway and store URLs only")
    if spec.route == "store" and not has_store:
        raise route_not_available(
            bucket=target.bucket,
            route="store",
            why=f"its storage ({target.backend.kind}) does not sign URLs; the gateway does",
        )
    return spec.route


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
    route = _route(spec, target)
    wanted = signer.check(spec.method, spec.expires_in_s, options)
    if route == "cdn":
        assert target.cdn is not None  # _route checked it
        url = target.cdn.sign(
            target.key, wanted.expire_time_unix, spec.client_ip, spec.not_before_unix
        )
        return SignedUrl(url, "GET", wanted.expire_time_unix, route="cdn")
    if spec.client_ip or spec.not_before_unix is not None:
        raise invalid_argument("client_ip and not_before apply to CDN URLs only")
    presigner = target.backend.capabilities.presigner
    if route == "gateway" or presigner is None:
        signed = signer.sign_checked(target.bucket, target.key, wanted, target.principal)
        return replace(signed, route="gateway")
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
        route="store",
    )

"""Signed URLs for backends that cannot presign themselves (local, memory).

A signed URL lets a plain HTTP client GET (or HEAD), PUT, or POST as an
HTML form (multipart/form-data, the object in the field "file") one object
until it expires. The gateway's own HTTP listener (gateway/http/server.py) serves
it and checks it here. The URL is

    {base_url}/v1/b/{bucket}/o/{key}?X-Sgw-Expires=..&X-Sgw-Method=..
        [&X-Sgw-Download=1][&X-Sgw-Filename=..]
        [&X-Sgw-Content-Type=..][&X-Sgw-Max-Size=..][&X-Sgw-Min-Size=..]
        &X-Sgw-Key-Id=<key id>&X-Sgw-Signature=<hex>

and the signature is the hex HMAC-SHA256, keyed with the gateway's current URL
secret, of the newline-separated canonical string

    SGW1-HMAC-SHA256
    <method>
    <bucket, percent-encoded>
    <key, percent-encoded>
    <expiry, unix seconds>
    <name=value for every X-Sgw-* query parameter but the signature,
     sorted, both percent-encoded; one per line>

Every query parameter whose name starts with "x-sgw-" (any case) is signed,
so adding, removing or changing one breaks the signature; other parameters
are ignored. The secrets come from STORAGE_URL_SECRET or from a file the
gateway creates once in its data directory, so URLs survive restarts
(gateway/core/url_secret.py). They rotate: X-Sgw-Key-Id (signed like the
rest) names the secret a URL was signed with, and a URL verifies as long as
that secret is still listed. URLs made before key ids existed have none; they
are checked against every listed secret, as any of them may have signed them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlencode

from gateway.core import url_principal
from gateway.core.url_secret import SecretRing, SigningKey
from gateway.domain.errors import GatewayError, Reason, invalid_argument
from gateway.domain.identity import ANONYMOUS, Principal
from gateway.domain.keys import validate_bucket, validate_key
from gateway.domain.media_types import validate_content_type
from gateway.domain.objects import UrlOptions

VERSION = "SGW1-HMAC-SHA256"

P_EXPIRES = "X-Sgw-Expires"
P_METHOD = "X-Sgw-Method"
P_DOWNLOAD = "X-Sgw-Download"
P_FILENAME = "X-Sgw-Filename"
P_CONTENT_TYPE = "X-Sgw-Content-Type"
P_MAX_SIZE = "X-Sgw-Max-Size"
P_MIN_SIZE = "X-Sgw-Min-Size"
P_KEY_ID = "X-Sgw-Key-Id"
P_SIGNATURE = "X-Sgw-Signature"
PARAM_PREFIX = "x-sgw-"

SignedMethod = Literal["GET", "PUT", "POST"]
# Request methods each signed method allows.
_ALLOWED: dict[str, tuple[str, ...]] = {"GET": ("GET", "HEAD"), "PUT": ("PUT",), "POST": ("POST",)}
_METHODS: dict[str, SignedMethod] = {"GET": "GET", "PUT": "PUT", "POST": "POST"}
# The form field a POST's Content-Type travels in (as in S3's and GCS's forms).
CONTENT_TYPE_FIELD = "Content-Type"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_FILENAME_BYTES = 1024


# --- signing and verifying -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str
    method: str
    expire_time_unix: int
    # Headers the caller must send, exactly as given.
    headers: dict[str, str] = field(default_factory=dict)
    # POST: form fields the caller must send before the file, exactly as given.
    form_fields: dict[str, str] = field(default_factory=dict)
    # A direct upload to a bucket that checks its uploads: the pending key the
    # URL writes, which FinalizeUpload takes ("" otherwise).
    pending_upload: str = ""
    # Who serves it: "gateway" (this listener), "store" (a presigning
    # storage) or "cdn" (core/signed_urls.py).
    route: str = "gateway"


@dataclass(frozen=True, slots=True)
class UrlRequest(UrlOptions):
    """A validated request for a signed URL (UrlSigner.check), with its
    options (keyword-only)."""

    method: SignedMethod
    expire_time_unix: int
    # Seconds from now until expire_time_unix, for signers that take a lifetime.
    expires_in_s: float


@dataclass(frozen=True, slots=True)
class VerifiedRequest(UrlOptions):
    """What a valid signature allows: method on bucket/key until
    expire_time_unix, with the options (keyword-only) it was signed with."""

    method: SignedMethod
    bucket: str
    key: str
    expire_time_unix: int
    # Who signed the URL (gateway/core/url_principal.py): the guards check
    # this principal's grant when the URL is used.
    signer: Principal = ANONYMOUS


class SignatureError(GatewayError):
    """A signed URL that does not allow the request; .message is short and
    safe to send to the client (it never contains the signature)."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.PERMISSION_DENIED, message)


def _canonical(method: str, bucket: str, key: str, expires: str, query: Mapping[str, str]) -> bytes:
    params = sorted(
        f"{_enc(name)}={_enc(value)}"
        for name, value in query.items()
        if name.lower().startswith(PARAM_PREFIX) and name != P_SIGNATURE
    )
    lines = [VERSION, _enc(method), _enc(bucket), _enc(key), _enc(expires), *params]
    return "\n".join(lines).encode("ascii")


def _enc(text: str) -> str:
    # Percent-encoding makes every field one unambiguous ASCII line.
    return quote(text, safe="", errors="surrogatepass")


class UrlSigner:
    """Signs and verifies URLs for the gateway's HTTP listener.

    base_url (scheme, host, port, optional path prefix; no trailing slash
    needed) may be reassigned once a listener started on port 0 knows its
    port: verification does not depend on it.
    """

    def __init__(
        self,
        secret: bytes | SecretRing,
        base_url: str,
        default_expiry_s: int = 3600,
        max_expiry_s: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # One secret, or a ring (current first); too short: ConfigError (a ValueError).
        self._secrets = SecretRing.of(secret)
        if not 1 <= default_expiry_s <= max_expiry_s:
            raise ValueError("need 1 <= default_expiry_s <= max_expiry_s")
        self.base_url = base_url
        self.default_expiry_s = default_expiry_s
        self.max_expiry_s = max_expiry_s
        self._clock = clock
        # The claims a signed URL carries for the policy (url_principal).
        self.carried_claims: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never show the secret
        return f"UrlSigner(base_url={self.base_url!r}, max_expiry_s={self.max_expiry_s})"

    @staticmethod
    def _mac(key: SigningKey, message: bytes) -> bytes:
        return hmac.new(key.secret, message, hashlib.sha256).hexdigest().encode("ascii")

    def check(
        self, method: SignedMethod, expires_in_s: float | None, options: UrlOptions
    ) -> UrlRequest:
        """Validate what a caller asks of a signed URL, whoever signs it (this
        signer, or a backend that presigns natively).

        Raises INVALID_EXPIRY (expires_in_s outside 1 s..max_expiry_s) and
        INVALID_ARGUMENT (options that do not fit the method, bad values).
        """
        if method not in _ALLOWED:
            raise invalid_argument(f"signed URL method must be GET, PUT or POST, not {method!r}")
        expires_in = self.default_expiry_s if expires_in_s is None else expires_in_s
        if not (math.isfinite(expires_in) and 1 <= expires_in <= self.max_expiry_s):
            raise GatewayError(
                Reason.INVALID_EXPIRY,
                f"expires_in must be between 1 second and {self.max_expiry_s} seconds "
                f"({self.max_expiry_s / 86400:g} days), got {expires_in:g} s",
                min_seconds=1,
                max_seconds=self.max_expiry_s,
            )
        download, filename, content_type = options.download, options.filename, options.content_type
        max_size, min_size = options.max_size, options.min_size
        if method == "GET":
            if content_type or max_size is not None:
                raise invalid_argument("content_type and max_size apply to PUT and POST URLs only")
            if filename and not download:
                raise invalid_argument("filename applies only with download")
            if filename:
                _check_text("filename", filename, MAX_FILENAME_BYTES)
        else:
            if download or filename:
                raise invalid_argument("download and filename apply to GET URLs only")
            validate_content_type(content_type)
            if max_size is not None and max_size < 0:
                raise invalid_argument(f"max_size must be >= 0, got {max_size}")
        if min_size is not None:
            if method != "POST":
                raise invalid_argument("min_size applies to POST URLs only")
            if min_size < 0:
                raise invalid_argument(f"min_size must be >= 0, got {min_size}")
            if max_size is not None and min_size > max_size:
                raise invalid_argument(f"min_size {min_size} exceeds max_size {max_size}")
        now = self._clock()
        expires = math.ceil(now + expires_in)
        return UrlRequest(method, expires, expires - now, **options.option_values())

    def sign(
        self,
        bucket: str,
        key: str,
        method: SignedMethod,
        expires_in_s: float | None,
        *,
        download: bool = False,
        filename: str = "",
        content_type: str = "",
        max_size: int | None = None,
        min_size: int | None = None,
    ) -> SignedUrl:
        """A URL allowing method on bucket/key (bucket: the resolved name).

        Raises what check() raises, and INVALID_KEY, INVALID_BUCKET.
        """
        options = UrlOptions(
            download=download,
            filename=filename,
            content_type=content_type,
            max_size=max_size,
            min_size=min_size,
        )
        return self.sign_checked(bucket, key, self.check(method, expires_in_s, options))

    def sign_checked(
        self, bucket: str, key: str, request: UrlRequest, signer: Principal = ANONYMOUS
    ) -> SignedUrl:
        """sign() for a request check() already validated, naming signer in the URL."""
        validate_bucket(bucket)
        validate_key(key)
        expires = request.expire_time_unix
        params: dict[str, str] = {P_EXPIRES: str(expires), P_METHOD: request.method}
        headers: dict[str, str] = {}
        form_fields: dict[str, str] = {}
        if request.download:
            params[P_DOWNLOAD] = "1"
        if request.filename:
            params[P_FILENAME] = request.filename
        if request.content_type:
            params[P_CONTENT_TYPE] = request.content_type
            if request.method == "POST":
                form_fields[CONTENT_TYPE_FIELD] = request.content_type
            else:
                headers["Content-Type"] = request.content_type
        if request.max_size is not None:
            params[P_MAX_SIZE] = str(request.max_size)
        if request.min_size is not None:
            params[P_MIN_SIZE] = str(request.min_size)
        params.update(url_principal.signer_params(signer, self.carried_claims))
        method = request.method
        signing_key = self._secrets.current
        params[P_KEY_ID] = signing_key.key_id
        canonical = _canonical(method, bucket, key, str(expires), params)
        params[P_SIGNATURE] = self._mac(signing_key, canonical).decode("ascii")
        path = f"/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='/')}"
        url = f"{self.base_url.rstrip('/')}{path}?{urlencode(params, quote_via=quote)}"
        return SignedUrl(url, method, expires, headers, form_fields)

    def verify(
        self, method: str, bucket: str, key: str, query: Mapping[str, str]
    ) -> VerifiedRequest:
        """Check a request (method, bucket and key from its path, decoded
        query) against its signature; SignatureError when it is not allowed."""
        signature = query.get(P_SIGNATURE)
        expires_text = query.get(P_EXPIRES)
        signed_method = query.get(P_METHOD)
        if not signature:
            raise SignatureError("signed URL: missing signature")
        if not expires_text or not signed_method:
            raise SignatureError("signed URL: missing parameters")
        key_id = query.get(P_KEY_ID)
        if key_id is None:
            candidates = list(self._secrets)  # signed before key ids existed
        else:
            named = self._secrets.find(key_id)
            if named is None:
                raise SignatureError(
                    "signed URL: signature made with a secret this gateway no longer "
                    "accepts (retired), or not by this gateway"
                )
            candidates = [named]
        canonical = _canonical(signed_method, bucket, key, expires_text, query)
        given = signature.lower().encode("utf-8", "replace")
        if not any(hmac.compare_digest(given, self._mac(k, canonical)) for k in candidates):
            raise SignatureError("signed URL: bad signature (tampered, or for another object)")
        # Signed by us from here on, so the values are well formed.
        try:
            expires = int(expires_text)
            max_size = _optional_int(query.get(P_MAX_SIZE))
            min_size = _optional_int(query.get(P_MIN_SIZE))
            signer = url_principal.signer_of(query)
        except ValueError:
            raise SignatureError("signed URL: malformed parameters") from None
        verified_method = _METHODS.get(signed_method)
        if verified_method is None:
            raise SignatureError("signed URL: malformed parameters")
        if self._clock() >= expires:
            raise SignatureError("signed URL: expired")
        if method.upper() not in _ALLOWED[signed_method]:
            raise SignatureError(f"signed URL: method {method} not allowed, only {signed_method}")
        return VerifiedRequest(
            method=verified_method,
            bucket=bucket,
            key=key,
            expire_time_unix=expires,
            download=query.get(P_DOWNLOAD) == "1",
            filename=query.get(P_FILENAME, ""),
            content_type=query.get(P_CONTENT_TYPE, ""),
            max_size=max_size,
            min_size=min_size,
            signer=signer,
        )


def _optional_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _check_text(name: str, value: str, max_bytes: int) -> None:
    if _CONTROL.search(value):
        raise invalid_argument(f"{name} must not contain control characters")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise invalid_argument(f"{name} is not valid UTF-8") from None
    if size > max_bytes:
        raise invalid_argument(f"{name} is longer than {max_bytes} bytes")

"""Upload ids: the opaque tokens that name a resumable upload to any replica.

A token carries everything a gateway needs to continue an upload it did not
start: the driver kind, the gateway bucket, the key, the backend's own handle
for the upload (a local state record's name, an S3 multipart upload id, a GCS
resumable session URL) and an expiry. Nothing is kept in one gateway's memory,
so every replica configured with the same secret can resume it.

Tokens are Fernet tokens (AES-128-CBC, then HMAC-SHA256 over the ciphertext,
from the `cryptography` package), keyed by a key derived from the gateway's
secret for this use only. The HMAC makes them unforgeable: a token that was
altered, truncated or made with another secret is refused as a whole, so nobody
can redirect an upload to another key or bucket. The encryption keeps the
handle from the client: a GCS session URL is a bearer capability for the
upload, which must only be used through the gateway and its checks.

An upload id is "<key id>.<Fernet token>": the key id names the secret it was
made with (gateway/core/url_secret.py), so ids made with a previous secret
still open while that secret is listed, and are refused once it is removed.
Ids made before key ids existed are a bare token; any listed secret may have
made them, so each is tried.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.core.url_secret import SecretRing
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import NO_CONDITIONS, Conditions

VERSION = 1
DEFAULT_LIFETIME_S = 7 * 24 * 3600
# Longer than any upload_id the gateway issues: a bound on what is parsed.
MAX_TOKEN_CHARS = 8192
_KEY_INFO = b"storagegw upload-id v1"
# Between the key id and the token: never in a Fernet token (URL-safe base64).
_KEY_ID_END = "."


@dataclass(frozen=True, slots=True)
class UploadRef:
    """What an upload id names."""

    backend: str  # the driver's kind: "local", "s3", "gcs", "memory"
    bucket: str  # the gateway's bucket name
    key: str
    handle: str  # the backend's own name for the upload; never logged
    expire_time_unix: int
    # The id of the authenticated principal that started the upload; "" when
    # authentication was off (and in ids issued before uploads had owners).
    owner: str = ""
    # In a scanning bucket: the pending key the driver's upload commits to
    # (gateway.core.scanned_writes), and the write's conditions, applied
    # when the object is promoted to key. "": the upload commits to key.
    stored_key: str = ""
    conditions: Conditions = NO_CONDITIONS

    @property
    def driver_key(self) -> str:
        """The key the driver's upload is of."""
        return self.stored_key or self.key

    def __repr__(self) -> str:  # the handle may be a capability (GCS session URL)
        return (
            f"UploadRef(backend={self.backend!r}, bucket={self.bucket!r}, key={self.key!r}, "
            f"expire_time_unix={self.expire_time_unix}, owner={self.owner!r})"
        )


def invalid_upload_id(why: str) -> GatewayError:
    return GatewayError(Reason.INVALID_UPLOAD_ID, f"upload_id is not valid: {why}")


class UploadIds:
    """Issues upload ids with the gateway's current secret, and opens those
    made with any secret still listed."""

    def __init__(
        self,
        secret: bytes | SecretRing,
        lifetime_s: int = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime_s < 1:
            raise ValueError("upload lifetime must be at least 1 second")
        ring = SecretRing.of(secret)
        self._fernets = {key.key_id: _fernet(key.secret) for key in ring}
        self._current_key_id = ring.current.key_id
        # Ids from before key ids: current secret first, as most were made with it.
        self._any_fernet = MultiFernet(list(self._fernets.values()))
        self.lifetime_s = lifetime_s
        self._clock = clock

    def __repr__(self) -> str:  # never show key material
        return f"UploadIds(lifetime_s={self.lifetime_s})"

    def issue(
        self,
        backend: str,
        bucket: str,
        key: str,
        handle: str,
        owner: str = "",
        *,
        stored_key: str = "",
        conditions: Conditions = NO_CONDITIONS,
    ) -> tuple[str, UploadRef]:
        """A new upload id for the upload handle names, and what it names."""
        expires = math.ceil(self._clock() + self.lifetime_s)
        ref = UploadRef(backend, bucket, key, handle, expires, owner, stored_key, conditions)
        payload: dict[str, object] = {
            "v": VERSION,
            "b": backend,
            "k": bucket,
            "o": key,
            "h": handle,
            "e": expires,
        }
        if owner:
            payload["p"] = owner
        if stored_key:
            payload["s"] = stored_key
            fields = dataclasses.asdict(conditions).items()
            payload["c"] = {k: v for k, v in fields if v not in ("", None)}
        token = self._fernets[self._current_key_id].encrypt_at_time(
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            int(self._clock()),
        )
        return f"{self._current_key_id}{_KEY_ID_END}{token.decode('ascii')}", ref

    def open(self, upload_id: str) -> UploadRef:
        """What upload_id names. INVALID_UPLOAD_ID when it was not issued with
        this secret (or was altered); UPLOAD_EXPIRED past its expiry."""
        if not upload_id:
            raise invalid_upload_id("empty")
        if len(upload_id) > MAX_TOKEN_CHARS or not upload_id.isascii():
            raise invalid_upload_id("not a token this gateway issued")
        key_id, separator, token = upload_id.rpartition(_KEY_ID_END)
        fernet: Fernet | MultiFernet = self._any_fernet
        if separator:
            named = self._fernets.get(key_id)
            if named is None:
                raise invalid_upload_id(
                    "made with a secret this gateway no longer accepts (retired), "
                    "or not by this gateway"
                )
            fernet = named
        try:
            plain = fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise invalid_upload_id(
                "not a token this gateway issued (altered, or another secret)"
            ) from None
        try:
            payload = json.loads(plain)
            if payload["v"] != VERSION:
                raise invalid_upload_id(f"version {payload['v']} is not supported")
            ref = UploadRef(
                backend=str(payload["b"]),
                bucket=str(payload["k"]),
                key=str(payload["o"]),
                handle=str(payload["h"]),
                expire_time_unix=int(payload["e"]),
                owner=str(payload.get("p", "")),
                stored_key=str(payload.get("s", "")),
                conditions=Conditions(**payload.get("c", {})),
            )
        except (ValueError, KeyError, TypeError):
            # Authentic but unreadable: only a gateway bug could make one.
            raise invalid_upload_id("malformed contents") from None
        if self._clock() >= ref.expire_time_unix:
            raise GatewayError(
                Reason.UPLOAD_EXPIRED,
                f"upload of {ref.key!r} expired; start a new one",
                key=ref.key,
                bucket=ref.bucket,
            )
        return ref


def _fernet(secret: bytes) -> Fernet:
    # A key of its own (HKDF), so that an upload id and a signed URL never
    # share a MAC key even though both come from the one secret.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(secret)
    return Fernet(base64.urlsafe_b64encode(derived))

"""Direct uploads' pending keys: where a URL signed by the storage itself
(S3, GCS presigned PUT or POST) puts the bytes of a bucket that checks its
uploads, so that nothing the gateway has not checked is ever under the
real key.

    STAGING_PREFIX + "direct/" + TOKEN + "/" + KEY

TOKEN is 128 random bits (hex): the name cannot be guessed, so nobody but
the URL's holder can upload there, nor finalize what another uploads. KEY
is the real key, so that finalizing needs nothing but the name (the sweep
has nothing else). The staging prefix is hidden from ordinary calls
(Buckets.open, Objects.list), so a pending object is read only by the
gateway.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from gateway.core.buckets import Target
from gateway.core.scanning import DEFAULT_STAGING_PREFIX
from gateway.domain.errors import GatewayError, Reason, invalid_argument
from gateway.domain.keys import MAX_KEY_BYTES

DIRECT = "direct/"
_TOKEN_HEX = 32
_NAME = re.compile(rf"{re.escape(DIRECT)}([0-9a-f]{{{_TOKEN_HEX}}})/")
# The user metadata naming the token of the direct upload an object was
# finalized from: a finalize retried after it succeeded recognises its object.
UPLOAD_TOKEN = "scan-upload"  # noqa: S105 - a metadata name, not a secret


@dataclass(frozen=True, slots=True)
class PendingName:
    """A direct upload's pending key, taken apart."""

    staging_prefix: str
    token: str
    key: str

    @property
    def pending_key(self) -> str:
        return f"{self.staging_prefix}{DIRECT}{self.token}/{self.key}"


def staging_prefix(target: Target) -> str:
    """Where the bucket's direct uploads wait for their checks."""
    return target.staging_prefix or DEFAULT_STAGING_PREFIX


def goes_direct(target: Target) -> bool:
    """Whether an upload URL for target must land under a pending key: the
    storage signs it (the bytes never pass the gateway) and the bucket
    checks its uploads (scans them, or has an upload policy)."""
    checked = target.scan is not None or target.policy is not None
    return checked and target.backend.capabilities.presigner is not None


def new_pending(target: Target) -> PendingName:
    """A fresh pending name for an upload to target's key; INVALID_KEY when
    the key is too long to be pended (the prefix and token take ~70 bytes
    of the 1,024 a key may have)."""
    name = PendingName(staging_prefix(target), secrets.token_hex(_TOKEN_HEX // 2), target.key)
    room = MAX_KEY_BYTES - (len(name.pending_key.encode()) - len(target.key.encode()))
    if len(target.key.encode()) > room:
        raise GatewayError(
            Reason.INVALID_KEY,
            f"a direct upload's key may have at most {room} bytes in this bucket (it waits "
            "under a pending key for its checks)",
            key=target.key,
        )
    return name


def parse_pending(text: str) -> PendingName:
    """A pending name as SignUrlResponse.pending_upload gave it;
    INVALID_ARGUMENT if it is not one (its staging prefix is checked against
    the bucket's once the bucket is known)."""
    found = _NAME.search(text)
    if found is None or not text[found.end() :]:
        raise invalid_argument(
            "pending_upload is not a pending upload's name (SignUrlResponse.pending_upload)",
            field="pending_upload",
        )
    return PendingName(text[: found.start()], found.group(1), text[found.end() :])


def direct_prefix(prefix: str) -> str:
    """Under which the direct uploads of a bucket with this staging prefix wait."""
    return prefix + DIRECT

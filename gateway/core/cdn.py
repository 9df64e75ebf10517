"""A CDN in front of a bucket, as the core knows it: a CdnSigner that makes
the CDN's signed URL of a key (gateway/cdn/: CloudFront, BunnyCDN), and
a CdnPurger that tells the CDN to forget keys after they change
(gateway/core/cdn_purge.py sends it what changed, off the write's path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class CdnSigner(Protocol):
    """Signs the URLs of one bucket's CDN."""

    @property
    def provider(self) -> str:
        """The CDN's name for messages: "cloudfront", "bunny"."""

    def sign(
        self,
        key: str,
        expire_time_unix: int,
        client_ip: str = "",
        not_before_unix: int | None = None,
    ) -> str:
        """The CDN's URL of key, allowing GET (and HEAD) until
        expire_time_unix, bound to client_ip when not empty, and from
        not_before_unix on when given. Raises INVALID_ARGUMENT when the CDN
        cannot bind that address or start time, and when the signer's
        configuration requires an address and none is given."""


class CdnPurger(Protocol):
    """Tells one bucket's CDN to drop what it cached of some keys."""

    @property
    def max_batch(self) -> int:
        """How many keys one purge() takes at most."""

    async def purge(self, keys: Sequence[str]) -> str | None:
        """Invalidate keys (at most max_batch) at the CDN: None once it
        accepted, else why not (safe to log: no secret), when it refused or
        could not be reached."""

    async def close(self) -> None:
        """Release connections."""

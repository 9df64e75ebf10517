"""What every CDN's signer (a core CdnSigner: cloudfront.py, bunny.py)
shares: the base URL its keys stand under, and the refusal of a URL bound to
no address where the bucket's configuration requires one."""

from __future__ import annotations

import abc

from gateway.cdn.urls import cdn_url
from gateway.domain.errors import invalid_argument


class CdnUrlSigner(abc.ABC):
    """Signs one CDN's URLs; a subclass says how (signed)."""

    provider: str

    def __init__(self, base_url: str, *, require_ip: bool = False) -> None:
        self.base_url = base_url
        self.require_ip = require_ip

    def sign(
        self,
        key: str,
        expire_time_unix: int,
        client_ip: str = "",
        not_before_unix: int | None = None,
    ) -> str:
        """See gateway/core/cdn.py's CdnSigner."""
        if self.require_ip and not client_ip:
            raise invalid_argument("this bucket's CDN URLs must be bound to a client_ip")
        url = cdn_url(self.base_url, key)
        return self.signed(url, expire_time_unix, client_ip, not_before_unix)

    @abc.abstractmethod
    def signed(
        self, url: str, expire_time_unix: int, client_ip: str, not_before_unix: int | None
    ) -> str:
        """url (a key's on the CDN) signed as sign says; INVALID_ARGUMENT
        when the CDN cannot bind client_ip or not_before_unix."""

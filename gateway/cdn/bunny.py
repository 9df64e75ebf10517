"""BunnyCDN token authentication (the "advanced", SHA-256 scheme), as Bunny's
own signing code computes it (github.com/BunnyWay/BunnyCDN.TokenAuthentication,
python3/token.py, and its tests):

    message = signature_path + expires + signing_data + user_ip
    token   = "HS256-" + base64url_nopad(HMAC-SHA256(security_key, message))

signature_path is the URL's path, or token_path when the token covers a
directory; signing_data the extra token parameters (token_path), sorted, as
name=value joined by "&". The token goes in the query
(?token=T[&token_path=..]&expires=E) or, for a directory token, at the
front of the path (/bcdn_token=T[&token_path=..]&expires=E/path/key), which
relative URLs under it (an HLS playlist's segments) keep."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from typing import Literal
from urllib.parse import quote, urlsplit

from gateway.cdn.secret import Secret
from gateway.cdn.signer import CdnUrlSigner
from gateway.domain.errors import invalid_argument

TokenScope = Literal["object", "directory"]


def bunny_token(
    security_key: str, signature_path: str, expires: int, params: dict[str, str], user_ip: str
) -> str:
    """The token for signature_path until expires, params being the signed
    token_* parameters."""
    signing_data = "&".join(f"{name}={value}" for name, value in sorted(params.items()))
    message = f"{signature_path}{expires}{signing_data}{user_ip}"
    digest = hmac.new(security_key.encode(), message.encode(), hashlib.sha256).digest()
    return "HS256-" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def signed_url(
    url: str,
    security_key: str,
    expires: int,
    *,
    user_ip: str = "",
    token_path: str = "",
    in_path: bool = False,
) -> str:
    """url signed until expires: the token in its query, or in_path at the
    front of its path; token_path: the path prefix the token covers."""
    parts = urlsplit(url)
    params = {"token_path": token_path} if token_path else {}
    token = bunny_token(security_key, token_path or parts.path, expires, params, user_ip)
    extra = "".join(f"&{name}={quote(value, safe='')}" for name, value in sorted(params.items()))
    origin = f"{parts.scheme}://{parts.netloc}"
    if in_path:
        return f"{origin}/bcdn_token={token}{extra}&expires={expires}{parts.path}"
    return f"{origin}{parts.path}?token={token}{extra}&expires={expires}"


class BunnySigner(CdnUrlSigner):
    """Signs one pull zone's URLs (a CdnSigner)."""

    provider = "bunny"

    def __init__(
        self,
        base_url: str,
        token_key: Secret,
        *,
        token_scope: TokenScope = "object",  # noqa: S107 - a scope, not a secret
        require_ip: bool = False,
    ) -> None:
        """token_scope "directory": the token covers the key's directory
        (token_path), in the path form, so what the object links to
        relatively (an HLS playlist's segments) is served too."""
        super().__init__(base_url, require_ip=require_ip)
        self._token_key = token_key
        self.token_scope = token_scope

    def __repr__(self) -> str:  # never the key
        return f"BunnySigner(base_url={self.base_url!r}, token_scope={self.token_scope!r})"

    def signed(
        self, url: str, expire_time_unix: int, client_ip: str, not_before_unix: int | None
    ) -> str:
        if not_before_unix is not None:
            raise invalid_argument("not_before applies to CloudFront URLs only, not BunnyCDN's")
        if client_ip:
            try:
                ipaddress.ip_address(client_ip)
            except ValueError:
                raise invalid_argument(
                    f"client_ip must be one IP address for a BunnyCDN URL, got {client_ip[:64]!r}"
                ) from None
        directory = self.token_scope == "directory"  # noqa: S105 - a scope, not a secret
        token_path = urlsplit(url).path.rpartition("/")[0] + "/" if directory else ""
        return signed_url(
            url,
            self._token_key.reveal(),
            expire_time_unix,
            user_ip=client_ip,
            token_path=token_path,
            in_path=directory,
        )

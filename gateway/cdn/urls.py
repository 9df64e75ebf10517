"""Where a key is on a CDN: its base URL (scheme, host, an optional path
prefix) and the key, percent-encoded as a path."""

from __future__ import annotations

from urllib.parse import quote, urlsplit


def cdn_url(base_url: str, key: str) -> str:
    """The CDN's URL of key (no query)."""
    return f"{base_url.rstrip('/')}/{quote(key, safe='/')}"


def cdn_path(base_url: str, key: str) -> str:
    """The path of key's URL on the CDN ("/prefix/key"), as invalidations name it."""
    return urlsplit(cdn_url(base_url, key)).path

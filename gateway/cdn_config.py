"""A bucket's CDN: the [buckets.NAME.cdn] table of GATEWAY_CONFIG's file, the
signer it builds, and its cache invalidation ([buckets.NAME.cdn.invalidation]).

    [buckets.media.cdn]
    provider = "cloudfront"                 # or "bunny"
    base_url = "https://d111111abcdef8.cloudfront.net/media"
    key_pair_id = "K2JCJMDEHXQW5F"          # CloudFront: key pair or public key id
    private_key_file = "/run/secrets/cf.pem"
    policy = "canned"                       # or "custom" (binds client_ip)
    # bunny: token_key_file = "..." or token_key_env = "VAR";
    #        token_scope = "object" or "directory"
    require_ip = false                      # refuse CDN URLs without client_ip

    [buckets.media.cdn.invalidation]
    enabled = true
    distribution_id = "E2QWRUHAPOMQZL"      # CloudFront
    access_key_id = "AKIA..."
    secret_access_key_env = "CF_SECRET"     # or secret_access_key_file
    # bunny: api_key_env = "VAR" or api_key_file = "..."
    endpoint = "https://cloudfront.amazonaws.com"   # another API, a test server
    queue_size = 10000

Secrets come from a file or a variable (the *_file and *_env settings), are
read once here and held as Secret, which never prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.backends.base import Backend
from gateway.cdn.bunny import BunnySigner
from gateway.cdn.cloudfront import CloudFrontSigner
from gateway.cdn.invalidation import (
    BUNNY_ENDPOINT,
    CLOUDFRONT_ENDPOINT,
    BunnyPurger,
    CloudFrontInvalidator,
)
from gateway.cdn.secret import Secret
from gateway.core.cdn import CdnPurger, CdnSigner
from gateway.core.cdn_purge import DEFAULT_QUEUE_SIZE, PurgeQueue, PurgingBackend
from gateway.core.scanning import DEFAULT_STAGING_PREFIX
from gateway.domain.settings import ConfigError, parse_positive

_COMMON = ("provider", "base_url", "require_ip", "invalidation")
_FIELDS = {
    "cloudfront": (*_COMMON, "key_pair_id", "private_key_file", "policy"),
    "bunny": (*_COMMON, "token_key_file", "token_key_env", "token_scope"),
}
_PURGE_COMMON = ("enabled", "endpoint", "queue_size")
_PURGE_FIELDS = {
    "cloudfront": (
        *_PURGE_COMMON,
        "distribution_id",
        "access_key_id",
        "secret_access_key_file",
        "secret_access_key_env",
        "session_token_env",
    ),
    "bunny": (*_PURGE_COMMON, "api_key_file", "api_key_env"),
}


@dataclass(frozen=True, slots=True)
class CdnSettings:
    provider: str
    signer: CdnSigner
    # Invalidation after writes and deletes (None: off).
    purger: CdnPurger | None = None
    queue_size: int = DEFAULT_QUEUE_SIZE


def _table(setting: str, table: object, fields: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(setting, "must be a table")
    unknown = set(table) - set(fields)
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    return table


def _required(setting: str, table: Mapping[str, Any], name: str) -> str:
    value = str(table.get(name, ""))
    if not value:
        raise ConfigError(f"{setting}.{name}", "is required")
    return value


def _choice(setting: str, table: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = str(table.get(name, choices[0]))
    if value not in choices:
        raise ConfigError(f"{setting}.{name}", f"{value!r} is not one of {', '.join(choices)}")
    return value


def _flag(setting: str, table: Mapping[str, Any], name: str) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{setting}.{name}", "must be true or false")
    return value


def _https_url(setting: str, text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
        raise ConfigError(setting, f"{text!r} is not an http(s) URL without a query")
    return text.rstrip("/")


def _read(setting: str, path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise ConfigError(setting, f"cannot read {path}: {error.strerror}") from None


def _secret(
    setting: str, table: Mapping[str, Any], name: str, env: Mapping[str, str], *, required: bool
) -> Secret | None:
    """The secret `name` from its *_file or *_env setting."""
    file, var = table.get(f"{name}_file"), table.get(f"{name}_env")
    if file is not None and var is not None:
        raise ConfigError(f"{setting}.{name}_file", f"set {name}_file or {name}_env, not both")
    if file is not None:
        value = _read(f"{setting}.{name}_file", Path(str(file)))
    elif var is not None:
        value = env.get(str(var), "")
        if not value:
            raise ConfigError(f"{setting}.{name}_env", f"{var} is not set")
    elif required:
        raise ConfigError(f"{setting}.{name}_file", f"{name}_file or {name}_env is required")
    else:
        return None
    if not value:
        raise ConfigError(f"{setting}.{name}_file", "is empty")
    return Secret(value)


def _private_key(setting: str, path: Path) -> RSAPrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise ConfigError(setting, f"cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(setting, f"{path} holds no unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(setting, f"{path} is not an RSA key (CloudFront signs with RSA)")
    return key


def parse_cdn(setting: str, table: object, env: Mapping[str, str]) -> CdnSettings:
    """The settings of a [buckets.NAME.cdn] table (setting names it)."""
    if not isinstance(table, dict):
        raise ConfigError(setting, "must be a table")
    provider = _choice(setting, table, "provider", ("cloudfront", "bunny"))
    _table(setting, table, _FIELDS[provider])
    base_url = _https_url(f"{setting}.base_url", _required(setting, table, "base_url"))
    require_ip = _flag(setting, table, "require_ip")
    signer: CdnSigner
    if provider == "cloudfront":
        signer = CloudFrontSigner(
            base_url,
            _required(setting, table, "key_pair_id"),
            _private_key(
                f"{setting}.private_key_file",
                Path(_required(setting, table, "private_key_file")),
            ),
            "custom"
            if _choice(setting, table, "policy", ("canned", "custom")) == "custom"
            else "canned",
            require_ip=require_ip,
        )
    else:
        token_key = _secret(setting, table, "token_key", env, required=True)
        assert token_key is not None
        scope = _choice(setting, table, "token_scope", ("object", "directory"))
        signer = BunnySigner(
            base_url,
            token_key,
            token_scope="directory" if scope == "directory" else "object",
            require_ip=require_ip,
        )
    invalidation = table.get("invalidation")
    if invalidation is None:
        return CdnSettings(provider, signer)
    purge_setting = f"{setting}.invalidation"
    purge = _table(purge_setting, invalidation, _PURGE_FIELDS[provider])
    if not _flag(purge_setting, purge, "enabled"):
        return CdnSettings(provider, signer)
    queue_size = int(
        parse_positive(f"{purge_setting}.queue_size", str(purge.get("queue_size", 10_000)))
    )
    purger: CdnPurger
    if provider == "cloudfront":
        secret = _secret(purge_setting, purge, "secret_access_key", env, required=True)
        assert secret is not None
        purger = CloudFrontInvalidator(
            base_url,
            _required(purge_setting, purge, "distribution_id"),
            _required(purge_setting, purge, "access_key_id"),
            secret,
            _secret(purge_setting, purge, "session_token", env, required=False),
            endpoint=_https_url(
                f"{purge_setting}.endpoint", str(purge.get("endpoint", CLOUDFRONT_ENDPOINT))
            ),
        )
    else:
        api_key = _secret(purge_setting, purge, "api_key", env, required=True)
        assert api_key is not None
        purger = BunnyPurger(
            base_url,
            api_key,
            endpoint=_https_url(
                f"{purge_setting}.endpoint", str(purge.get("endpoint", BUNNY_ENDPOINT))
            ),
        )
    return CdnSettings(provider, signer, purger, queue_size)


class _WithCdn(Protocol):
    """A bucket's configuration, as far as its CDN goes (BucketConfig)."""

    @property
    def cdn(self) -> CdnSettings | None: ...

    @property
    def scan(self) -> Any: ...


def cdn_signers(buckets: Mapping[str, _WithCdn]) -> dict[str, CdnSigner]:
    """The signers of the buckets with a CDN."""
    return {name: b.cdn.signer for name, b in buckets.items() if b.cdn is not None}


def purging(
    buckets: Mapping[str, _WithCdn],
    backends: Mapping[str, Backend],
    reporter: Callable[[str], Callable[[str, int], None]] | None = None,
) -> dict[str, Backend]:
    """backends, those of buckets whose CDN purges wrapped to purge after
    their writes and deletes (keys under a staging prefix excepted);
    reporter(bucket): what counts that bucket's purge outcomes."""
    wrapped = dict(backends)
    for name, bucket in buckets.items():
        cdn = bucket.cdn
        if cdn is None or cdn.purger is None:
            continue
        staging = {DEFAULT_STAGING_PREFIX}
        if bucket.scan is not None:
            staging.add(bucket.scan.staging_prefix)
        report = None if reporter is None else reporter(name)
        queue = PurgeQueue(name, cdn.purger, cdn.queue_size, report)
        wrapped[name] = PurgingBackend(backends[name], queue, tuple(sorted(staging)))
    return wrapped

"""Configuration from environment variables and an optional TOML file.

Names follow svc-infra where it has one (STORAGE_*); the gateway's own
settings are GATEWAY_*. Every problem raises ConfigError naming the setting,
so a bad start says exactly what to fix.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.backends.gcs import settings as gcs_settings
from gateway.backends.gcs.settings import GcsSettings
from gateway.backends.s3.settings import (
    ADDRESSING_STYLES,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    S3Settings,
)
from gateway.domain.errors import GatewayError
from gateway.domain.keys import validate_bucket

KIB = 1024
MIB = 1024 * KIB
DEFAULT_CHUNK_SIZE = 1 * MIB
MAX_CHUNK_SIZE = 2 * MIB
DEFAULT_MAX_MESSAGE_SIZE = 4 * MIB
BACKENDS = ("local", "memory", "s3", "gcs")


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


@dataclass(frozen=True, slots=True)
class BucketConfig:
    name: str
    backend: str
    path: Path | None = None  # local
    quota: int | None = None  # memory
    s3: S3Settings | None = None  # s3
    gcs: GcsSettings | None = None  # gcs
    # What this bucket's unfinished resumable uploads may hold (None: the
    # gateway-wide GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES).
    max_unfinished_upload_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    buckets: dict[str, BucketConfig]
    default_bucket: str
    base_path: Path = Path("data")
    listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    # An HTTP connection with no request in progress is closed after this long.
    http_keepalive_timeout: float = 15.0
    # Open HTTP connections past this many are closed at once, unanswered.
    http_max_connections: int = 512
    base_url: str = ""
    url_secret: str | None = field(default=None, repr=False)
    url_expiration: int = 3600
    url_max_expiration: int = 7 * 86400
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_object_size: int | None = None
    shutdown_grace: float = 30.0
    # A stream (gRPC Put/Get, HTTP body) that moves nothing for this long is
    # ended with STREAM_IDLE_TIMEOUT and its files and buffers are freed.
    stream_idle_timeout: float = 60.0
    # In-flight Put and Get streams in all (past it: TOO_MANY_STREAMS), and
    # per client connection (HTTP/2 max_concurrent_streams: the client queues).
    max_streams: int = 256
    max_streams_per_connection: int = 100
    # Chunk bytes being hashed and written across all streams; a stream over
    # it waits (backpressure) instead of the gateway's memory growing.
    max_buffered_bytes: int = 64 * MIB
    health_interval: float = 5.0
    log_format: str = "auto"
    log_level: str = "INFO"
    # Abort incomplete uploads older than this, every cleanup_interval (None:
    # upload_lifetime, so that expired resumable uploads go).
    stale_upload_age: float | None = None
    # How long a resumable upload's id stays valid.
    upload_lifetime: int = 7 * 86400
    cleanup_interval: float = 3600.0
    # Per bucket, what unfinished resumable uploads may hold (None: no cap).
    max_unfinished_upload_bytes: int | None = None
    config_file: Path | None = None

    def unfinished_upload_caps(self) -> dict[str, int]:
        """{bucket: what its unfinished resumable uploads may hold}, for the
        buckets with a cap (their own, else the gateway-wide one)."""
        caps = {}
        for name, bucket in self.buckets.items():
            cap = bucket.max_unfinished_upload_bytes
            if cap is None:
                cap = self.max_unfinished_upload_bytes
            if cap is not None:
                caps[name] = cap
        return caps

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"http://{self.http_listen}").rstrip("/")


_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]i?b?|b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(setting: str, text: str) -> int:
    """Bytes from '1048576', '512KiB', '1 MiB', '2GB' (KiB = 1024, KB = 1000)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ConfigError(setting, f"{text!r} is not a size (examples: 1048576, 512KiB, 2GiB)")
    number, unit = int(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else None
    if base is not None:
        return int(number * base ** ("kmgt".index(unit[0]) + 1))
    return number * _UNITS[unit[:1]]


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(setting: str, text: str) -> float:
    """Seconds from '90', '30s', '15m', '12h', '7d'."""
    match = _DURATION.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(setting, f"{text!r} is not a duration (examples: 90, 15m, 12h, 7d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]


def _listen(setting: str, text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(setting, f"{text!r} is not host:port (example: 127.0.0.1:50051)")
    return text


def _positive(setting: str, text: str, *, integer: bool = True) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if value <= 0:
        raise ConfigError(setting, f"must be positive, got {text}")
    return value


def _buffered_bytes(text: str | None, max_message: int) -> int:
    if text is None:
        return 64 * MIB
    size = parse_size("GATEWAY_MAX_BUFFERED_BYTES", text)
    if size < max_message:
        # Else one full-size chunk could never be admitted.
        raise ConfigError(
            "GATEWAY_MAX_BUFFERED_BYTES",
            f"must be at least GATEWAY_MAX_MESSAGE_SIZE ({max_message} bytes), got {text}",
        )
    return size


# Settings any bucket table may hold, whatever its backend.
COMMON_FIELDS = ("max_unfinished_upload_bytes",)


def _bucket(
    setting: str,
    name: str,
    table: Mapping[str, Any],
    base_path: Path,
    google_env: Mapping[str, str] | None = None,
) -> BucketConfig:
    bucket = _bucket_store(
        setting,
        name,
        {k: v for k, v in table.items() if k not in COMMON_FIELDS},
        base_path,
        google_env,
    )
    cap = table.get("max_unfinished_upload_bytes")
    if cap is None:
        return bucket
    field = f"{setting}.max_unfinished_upload_bytes"
    return dataclasses.replace(bucket, max_unfinished_upload_bytes=parse_size(field, str(cap)))


def _bucket_store(
    setting: str,
    name: str,
    table: Mapping[str, Any],
    base_path: Path,
    google_env: Mapping[str, str] | None = None,
) -> BucketConfig:
    try:
        validate_bucket(name)
    except GatewayError as error:
        raise ConfigError(setting, error.message) from None
    backend = str(table.get("backend", "local"))
    if backend not in BACKENDS:
        raise ConfigError(f"{setting}.backend", f"{backend!r} is not one of {', '.join(BACKENDS)}")
    fields = {"s3": S3_FIELDS, "gcs": GCS_FIELDS}.get(backend, ("path", "quota"))
    unknown = set(table) - {"backend", *fields}
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    if backend in ("s3", "gcs"):
        if setting in ("STORAGE_S3", "STORAGE_GCS"):  # from the environment

            def name_of(field: str) -> str:
                if backend == "gcs" and field in GCS_ENV_NAMES:
                    return GCS_ENV_NAMES[field]
                return f"{setting}_{field.upper()}"

        else:

            def name_of(field: str) -> str:
                return f"{setting}.{field}"

        if backend == "gcs":
            return BucketConfig(name, backend, gcs=_gcs_settings(table, name_of, google_env or {}))
        return BucketConfig(name, backend, s3=_s3_settings(table, name_of))
    if backend == "local":
        path = Path(str(table.get("path") or base_path / name))
        return BucketConfig(name, backend, path=path)
    quota = table.get("quota")
    size = None if quota is None else parse_size(f"{setting}.quota", str(quota))
    return BucketConfig(name, backend, quota=size)


# S3 settings: TOML field names; upper-cased after STORAGE_S3_, the variables.
S3_FIELDS = (
    "bucket",
    "prefix",
    "region",
    "endpoint",
    "access_key",
    "secret_key",
    "addressing_style",
    "part_size",
    "concurrency",
    "storage_class",
    "sse",
    "sse_kms_key_id",
)


def _s3_settings(table: Mapping[str, Any], name_of: Callable[[str], str]) -> S3Settings:
    """S3Settings from a bucket table; name_of(field) names a field in errors."""

    def text(name: str, default: str = "") -> str:
        return str(table.get(name, default))

    if not text("bucket"):
        raise ConfigError(name_of("bucket"), "the S3 bucket name is required")
    part_size = 8 * 1024 * 1024
    if "part_size" in table:
        part_size = parse_size(name_of("part_size"), text("part_size"))
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ConfigError(name_of("part_size"), "must be between 5MiB and 5GiB (S3's limits)")
    concurrency = int(_positive(name_of("concurrency"), text("concurrency", "4")))
    style = text("addressing_style", "auto")
    if style not in ADDRESSING_STYLES:
        raise ConfigError(
            name_of("addressing_style"), f"{style!r} is not one of {', '.join(ADDRESSING_STYLES)}"
        )
    endpoint = text("endpoint")
    if endpoint and not re.match(r"https?://", endpoint):
        raise ConfigError(name_of("endpoint"), f"{endpoint!r} must start with http:// or https://")
    if text("prefix").startswith("/"):
        raise ConfigError(name_of("prefix"), "must not start with '/'")
    return S3Settings(
        bucket=text("bucket"),
        prefix=text("prefix"),
        region=text("region") or None,
        endpoint_url=endpoint or None,
        access_key=text("access_key") or None,
        secret_key=text("secret_key") or None,
        addressing_style=style,
        part_size=part_size,
        concurrency=concurrency,
        storage_class=text("storage_class"),
        server_side_encryption=text("sse"),
        kms_key_id=text("sse_kms_key_id"),
    )


# GCS settings: TOML field names; STORAGE_GCS_ + the upper-cased name are the
# variables, but for the names in GCS_ENV_NAMES (Google's own conventions).
GCS_FIELDS = (
    "bucket",
    "prefix",
    "project",
    "credentials_path",
    "emulator_host",
    "signing_account",
    "chunk_size",
    "threads",
    "retry_deadline",
    "storage_class",
    "kms_key",
)
GCS_ENV_NAMES = {"emulator_host": "STORAGE_EMULATOR_HOST"}
# Process-wide Google settings every GCS bucket defaults to (as
# google-cloud-storage and google-auth themselves would).
GOOGLE_DEFAULTS = {
    "credentials_path": "GOOGLE_APPLICATION_CREDENTIALS",
    "emulator_host": "STORAGE_EMULATOR_HOST",
}


def _gcs_settings(
    table: Mapping[str, Any], name_of: Callable[[str], str], google_env: Mapping[str, str]
) -> GcsSettings:
    """GcsSettings from a bucket table; name_of(field) names a field in errors;
    google_env holds GOOGLE_DEFAULTS' values, used where the table has none."""

    def text(name: str, default: str = "") -> str:
        return str(table.get(name) or google_env.get(name) or default)

    if not text("bucket"):
        raise ConfigError(name_of("bucket"), "the GCS bucket name is required")
    chunk_size = gcs_settings.DEFAULT_CHUNK_SIZE
    if "chunk_size" in table:
        chunk_size = parse_size(name_of("chunk_size"), text("chunk_size"))
        unit, most = gcs_settings.CHUNK_MULTIPLE, gcs_settings.MAX_CHUNK_SIZE
        if chunk_size % unit or not unit <= chunk_size <= most:
            raise ConfigError(
                name_of("chunk_size"),
                "must be a multiple of 256KiB (resumable uploads' unit), at most 256MiB",
            )
    threads = int(_positive(name_of("threads"), text("threads", "16")))
    deadline = parse_duration(name_of("retry_deadline"), text("retry_deadline", "120"))
    emulator = text("emulator_host")
    if emulator and not re.fullmatch(r"(https?://)?[^/\s]+/?", emulator):
        raise ConfigError(
            name_of("emulator_host"), f"{emulator!r} is not host:port or an http(s) URL"
        )
    if text("prefix").startswith("/"):
        raise ConfigError(name_of("prefix"), "must not start with '/'")
    return GcsSettings(
        bucket=text("bucket"),
        prefix=text("prefix"),
        project=text("project") or None,
        credentials_path=text("credentials_path") or None,
        emulator_host=emulator or None,
        signing_account=text("signing_account") or None,
        chunk_size=chunk_size,
        threads=threads,
        retry_deadline=deadline,
        storage_class=text("storage_class"),
        kms_key=text("kms_key"),
    )


def _file_buckets(
    path: Path, base_path: Path, google_env: Mapping[str, str]
) -> tuple[dict[str, BucketConfig], str | None]:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError("GATEWAY_CONFIG", f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("GATEWAY_CONFIG", f"{path} is not valid TOML: {error}") from None
    tables = document.get("buckets", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("GATEWAY_CONFIG", f"{path} defines no [buckets.NAME] table")
    buckets = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"buckets.{name}", "must be a table")
        buckets[name] = _bucket(f"buckets.{name}", name, table, base_path, google_env)
    default = document.get("default_bucket")
    return buckets, None if default is None else str(default)


def load(env: Mapping[str, str]) -> Config:
    """Build the configuration from env (os.environ in production)."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    base_path = Path(get("STORAGE_BASE_PATH") or "data")
    config_file = Path(p) if (p := get("GATEWAY_CONFIG")) else None
    default = get("GATEWAY_DEFAULT_BUCKET")
    google_env = {
        field: value for field, name in GOOGLE_DEFAULTS.items() if (value := get(name)) is not None
    }
    if config_file is not None:
        buckets, file_default = _file_buckets(config_file, base_path, google_env)
        default = default or file_default or next(iter(buckets))
    else:
        default = default or "default"
        s3_table = {
            name: value
            for name in S3_FIELDS
            if (value := get(f"STORAGE_S3_{name.upper()}")) is not None
        }
        gcs_table = {
            name: value
            for name in GCS_FIELDS
            if (value := get(GCS_ENV_NAMES.get(name, f"STORAGE_GCS_{name.upper()}"))) is not None
        }
        # As svc-infra decides: with no explicit backend, an S3 bucket or S3
        # credentials mean S3; else a GCS bucket or GCS credentials (also
        # GOOGLE_APPLICATION_CREDENTIALS) mean GCS; else local. S3 comes first
        # because Google's variable is often set machine-wide for other tools.
        if {"bucket", "access_key"} & set(s3_table):
            detected = "s3"
        elif {"bucket", "credentials_path"} & {*gcs_table, *google_env}:
            detected = "gcs"
        else:
            detected = "local"
        backend = get("STORAGE_BACKEND") or detected
        table: dict[str, Any] = {"backend": backend}
        if backend == "s3":
            table.update(s3_table)
        if backend == "gcs":
            table.update(gcs_table)
        if backend == "local":
            table["path"] = str(base_path / default)
        if backend == "memory" and (quota := get("STORAGE_MEMORY_QUOTA")):
            table["quota"] = quota
        if backend not in BACKENDS:
            raise ConfigError("STORAGE_BACKEND", f"{backend!r} is not one of {', '.join(BACKENDS)}")
        setting = {"s3": "STORAGE_S3", "gcs": "STORAGE_GCS"}.get(backend, "GATEWAY_DEFAULT_BUCKET")
        buckets = {default: _bucket(setting, default, table, base_path, google_env)}
    if default not in buckets:
        raise ConfigError("GATEWAY_DEFAULT_BUCKET", f"{default!r} is not a configured bucket")

    chunk_size = DEFAULT_CHUNK_SIZE
    if text := get("GATEWAY_CHUNK_SIZE"):
        chunk_size = parse_size("GATEWAY_CHUNK_SIZE", text)
        if not 4 * KIB <= chunk_size <= MAX_CHUNK_SIZE:
            raise ConfigError("GATEWAY_CHUNK_SIZE", f"must be between 4KiB and 2MiB, got {text}")
    max_message = DEFAULT_MAX_MESSAGE_SIZE
    if text := get("GATEWAY_MAX_MESSAGE_SIZE"):
        max_message = parse_size("GATEWAY_MAX_MESSAGE_SIZE", text)
        if max_message < chunk_size + 64 * KIB:
            raise ConfigError(
                "GATEWAY_MAX_MESSAGE_SIZE", "must exceed GATEWAY_CHUNK_SIZE by at least 64KiB"
            )
    max_object = None
    if text := get("GATEWAY_MAX_OBJECT_SIZE"):
        max_object = parse_size("GATEWAY_MAX_OBJECT_SIZE", text)
    expiration = int(_positive("STORAGE_URL_EXPIRATION", get("STORAGE_URL_EXPIRATION") or "3600"))
    max_expiration = int(
        _positive("STORAGE_URL_MAX_EXPIRATION", get("STORAGE_URL_MAX_EXPIRATION") or "604800")
    )
    if expiration > max_expiration:
        raise ConfigError("STORAGE_URL_EXPIRATION", "exceeds STORAGE_URL_MAX_EXPIRATION")
    secret = get("STORAGE_URL_SECRET")
    if secret is not None and len(secret.encode()) < 16:
        raise ConfigError("STORAGE_URL_SECRET", "must be at least 16 bytes")
    log_format = get("GATEWAY_LOG_FORMAT") or "auto"
    if log_format not in ("auto", "json", "text"):
        raise ConfigError("GATEWAY_LOG_FORMAT", "must be auto, json or text")
    base_url = get("STORAGE_BASE_URL") or ""
    if base_url and not re.match(r"https?://", base_url):
        raise ConfigError("STORAGE_BASE_URL", f"{base_url!r} must start with http:// or https://")
    return Config(
        buckets=buckets,
        default_bucket=default,
        base_path=base_path,
        listen=_listen("GATEWAY_LISTEN", get("GATEWAY_LISTEN") or "127.0.0.1:50051"),
        http_listen=_listen("GATEWAY_HTTP_LISTEN", get("GATEWAY_HTTP_LISTEN") or "127.0.0.1:8080"),
        http_keepalive_timeout=parse_duration(
            "GATEWAY_HTTP_KEEPALIVE_TIMEOUT", get("GATEWAY_HTTP_KEEPALIVE_TIMEOUT") or "15"
        ),
        http_max_connections=int(
            _positive("GATEWAY_HTTP_MAX_CONNECTIONS", get("GATEWAY_HTTP_MAX_CONNECTIONS") or "512")
        ),
        base_url=base_url,
        url_secret=secret,
        url_expiration=expiration,
        url_max_expiration=max_expiration,
        chunk_size=chunk_size,
        max_message_size=max_message,
        max_object_size=max_object,
        shutdown_grace=_positive(
            "GATEWAY_SHUTDOWN_GRACE", get("GATEWAY_SHUTDOWN_GRACE") or "30", integer=False
        ),
        stream_idle_timeout=parse_duration(
            "GATEWAY_STREAM_IDLE_TIMEOUT", get("GATEWAY_STREAM_IDLE_TIMEOUT") or "60"
        ),
        max_streams=int(_positive("GATEWAY_MAX_STREAMS", get("GATEWAY_MAX_STREAMS") or "256")),
        max_streams_per_connection=int(
            _positive(
                "GATEWAY_MAX_STREAMS_PER_CONNECTION",
                get("GATEWAY_MAX_STREAMS_PER_CONNECTION") or "100",
            )
        ),
        max_buffered_bytes=_buffered_bytes(get("GATEWAY_MAX_BUFFERED_BYTES"), max_message),
        health_interval=_positive(
            "GATEWAY_HEALTH_INTERVAL", get("GATEWAY_HEALTH_INTERVAL") or "5", integer=False
        ),
        log_format=log_format,
        stale_upload_age=(
            parse_duration("GATEWAY_STALE_UPLOAD_AGE", text)
            if (text := get("GATEWAY_STALE_UPLOAD_AGE"))
            else None
        ),
        upload_lifetime=math.ceil(
            parse_duration("GATEWAY_UPLOAD_LIFETIME", get("GATEWAY_UPLOAD_LIFETIME") or "7d")
        ),
        cleanup_interval=parse_duration(
            "GATEWAY_CLEANUP_INTERVAL", get("GATEWAY_CLEANUP_INTERVAL") or "1h"
        ),
        log_level=(get("GATEWAY_LOG_LEVEL") or "INFO").upper(),
        max_unfinished_upload_bytes=(
            parse_size("GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES", text)
            if (text := get("GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES"))
            else None
        ),
        config_file=config_file,
    )

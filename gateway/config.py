"""Configuration from environment variables and an optional TOML file.

Names follow svc-infra where it has one (STORAGE_*); the gateway's own
settings are GATEWAY_*. Every problem raises ConfigError naming the setting,
so a bad start says exactly what to fix.

This module knows the gateway-wide settings; gateway/bucket_config.py reads
the buckets (from the environment or the file's [buckets.NAME] tables), and
a bucket's driver settings are read by the driver's own spec (found in
gateway.backends.registry by the bucket's kind).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gateway.access.settings import AccessSettings, load_access_settings
from gateway.bucket_config import BucketConfig, env_bucket, file_buckets
from gateway.core.url_secret import parse_secrets
from gateway.dedup_sweep import read_interval as read_dedup_interval
from gateway.domain.checksums import DEFAULT_SHA256_CHOICE, Sha256Choice
from gateway.domain.settings import (
    KIB,
    MIB,
    ConfigError,
    parse_duration,
    parse_interval,
    parse_positive,
    parse_sha256_choice,
    parse_size,
    parse_workers,
)
from gateway.domain.upload_policy import UploadPolicy
from gateway.pending import PendingSweepSettings
from gateway.pending import read_settings as read_pending_settings
from gateway.telemetry.settings import TelemetrySettings, load_telemetry_settings
from gateway.transport.settings import (
    TransportSettings,
    load_transport_settings,
)

__all__ = ["BucketConfig", "Config", "ConfigError", "load", "parse_duration", "parse_size"]

DEFAULT_CHUNK_SIZE = 1 * MIB
MAX_CHUNK_SIZE = 2 * MIB
DEFAULT_MAX_MESSAGE_SIZE = 4 * MIB


@dataclass(frozen=True, slots=True)
class Config:
    buckets: dict[str, BucketConfig]
    default_bucket: str
    base_path: Path = Path("data")
    listen: str = "127.0.0.1:50051"
    http_listen: str = "127.0.0.1:8080"
    # A plaintext listener serving grpc.health.v1 only ("": none), for probes
    # that cannot pass the gRPC port's mutual TLS (gateway/rpc/health_listener.py).
    health_listen: str = ""
    # An HTTP connection with no request in progress is closed after this long.
    http_keepalive_timeout: float = 15.0
    # Open HTTP connections past this many are closed at once, unanswered.
    http_max_connections: int = 512
    # A refused upload's body still on its way is read and dropped up to this
    # much, for up to this long, so that its client can read the answer.
    http_linger_bytes: int = 4 * 1024 * 1024
    http_linger_time: float = 2.0
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
    # How often the first worker aborts stale uploads and expires by the
    # gateway's lifecycle rules (0: never; `storagegw cleanup` does it).
    cleanup_interval: float = 3600.0
    # Per bucket, what unfinished resumable uploads may hold (None: no cap).
    max_unfinished_upload_bytes: int | None = None
    # When a bucket computes its objects' SHA-256, unless its table says.
    sha256: Sha256Choice = DEFAULT_SHA256_CHOICE
    config_file: Path | None = None
    # Processes serving the same ports (gateway/workers.py), and which of
    # them this one is (None: the only one; set by the supervisor, not a setting).
    workers: int = 1
    worker: int | None = None
    # Authentication, the policy, reflection (gateway/access/settings.py).
    access: AccessSettings = field(default_factory=AccessSettings)
    # TLS on both listeners, and the listeners served in the clear on purpose.
    transport: TransportSettings = field(default_factory=TransportSettings)
    # Metrics: the Prometheus listener, OTLP (gateway/telemetry/settings.py).
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    # The sweep of direct uploads nobody finalized (gateway/pending.py).
    pending: PendingSweepSettings = field(default_factory=PendingSweepSettings)
    # How often the dedup buckets' garbage is collected (gateway/dedup_sweep.py; 0: never).
    dedup_sweep_interval: float = 3600.0

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

    def sha256_choices(self) -> dict[str, Sha256Choice]:
        """{bucket: when its writes compute the object's SHA-256}."""
        # A dedup bucket stores each object by its SHA-256: always computed.
        return {
            name: Sha256Choice.ALWAYS if b.dedup else b.sha256 or self.sha256
            for name, b in self.buckets.items()
        }

    def upload_policies(self) -> dict[str, UploadPolicy]:
        """{bucket: its upload policy}, for the buckets with one."""
        return {n: b.upload_policy for n, b in self.buckets.items() if b.upload_policy}

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"{self.transport.scheme}://{self.http_listen}").rstrip("/")


T = TypeVar("T")
# The settings' defaults, declared once (Config's), for the variables left unset.
_DEFAULT = Config(buckets={}, default_bucket="")


def _read(env: Mapping[str, str], name: str, default: T, parse: Callable[[str, str], T]) -> T:
    """Setting `name` parsed (a problem names it), `default` when unset."""
    text = env.get(name)
    return default if text is None else parse(name, text)


def _listen(setting: str, text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(setting, f"{text!r} is not host:port (example: 127.0.0.1:50051)")
    return text


def _count(setting: str, text: str) -> int:
    return int(parse_positive(setting, text))


def _seconds(setting: str, text: str) -> float:
    return parse_positive(setting, text, integer=False)


def _lifetime(setting: str, text: str) -> int:
    return math.ceil(parse_duration(setting, text))


def _secret(setting: str, text: str) -> str:
    parse_secrets(text, setting)  # checked here, used by the server (never printed)
    return text


def _log_format(setting: str, text: str) -> str:
    if text not in ("auto", "json", "text"):
        raise ConfigError(setting, "must be auto, json or text")
    return text


def _base_url(setting: str, text: str) -> str:
    if text and not re.match(r"https?://", text):
        raise ConfigError(setting, f"{text!r} must start with http:// or https://")
    return text


def _message_sizes(env: Mapping[str, str]) -> tuple[int, int]:
    """GATEWAY_CHUNK_SIZE and GATEWAY_MAX_MESSAGE_SIZE, which must hold a chunk."""
    chunk_size = _DEFAULT.chunk_size
    if text := env.get("GATEWAY_CHUNK_SIZE"):
        chunk_size = parse_size("GATEWAY_CHUNK_SIZE", text)
        if not 4 * KIB <= chunk_size <= MAX_CHUNK_SIZE:
            raise ConfigError("GATEWAY_CHUNK_SIZE", f"must be between 4KiB and 2MiB, got {text}")
    max_message = _DEFAULT.max_message_size
    if text := env.get("GATEWAY_MAX_MESSAGE_SIZE"):
        max_message = parse_size("GATEWAY_MAX_MESSAGE_SIZE", text)
        if max_message < chunk_size + 64 * KIB:
            raise ConfigError(
                "GATEWAY_MAX_MESSAGE_SIZE", "must exceed GATEWAY_CHUNK_SIZE by at least 64KiB"
            )
    return chunk_size, max_message


def _url_expirations(env: Mapping[str, str]) -> tuple[int, int]:
    """STORAGE_URL_EXPIRATION and STORAGE_URL_MAX_EXPIRATION, the first within the second."""
    expiration = _read(env, "STORAGE_URL_EXPIRATION", _DEFAULT.url_expiration, _count)
    max_expiration = _read(env, "STORAGE_URL_MAX_EXPIRATION", _DEFAULT.url_max_expiration, _count)
    if expiration > max_expiration:
        raise ConfigError("STORAGE_URL_EXPIRATION", "exceeds STORAGE_URL_MAX_EXPIRATION")
    return expiration, max_expiration


def _buffered_bytes(env: Mapping[str, str], max_message: int) -> int:
    text = env.get("GATEWAY_MAX_BUFFERED_BYTES")
    if text is None:
        return _DEFAULT.max_buffered_bytes
    size = parse_size("GATEWAY_MAX_BUFFERED_BYTES", text)
    if size < max_message:
        # Else one full-size chunk could never be admitted.
        raise ConfigError(
            "GATEWAY_MAX_BUFFERED_BYTES",
            f"must be at least GATEWAY_MAX_MESSAGE_SIZE ({max_message} bytes), got {text}",
        )
    return size


def load(env: Mapping[str, str]) -> Config:
    """Build the configuration from env (os.environ in production)."""
    env = {name: value for name, value in env.items() if value}  # empty means unset
    base_path = _read(env, "STORAGE_BASE_PATH", _DEFAULT.base_path, lambda _, text: Path(text))
    config_file = _read(env, "GATEWAY_CONFIG", _DEFAULT.config_file, lambda _, text: Path(text))
    if config_file is None:
        default = env.get("GATEWAY_DEFAULT_BUCKET", "default")
        buckets, workers_in_file = {default: env_bucket(default, env, base_path)}, None
    else:
        buckets, default, workers_in_file = file_buckets(config_file, env, base_path)
    if default not in buckets:
        raise ConfigError("GATEWAY_DEFAULT_BUCKET", f"{default!r} is not a configured bucket")
    chunk_size, max_message = _message_sizes(env)
    max_object = _read(env, "GATEWAY_MAX_OBJECT_SIZE", _DEFAULT.max_object_size, parse_size)
    expiration, max_expiration = _url_expirations(env)
    secret = _read(env, "STORAGE_URL_SECRET", _DEFAULT.url_secret, _secret)
    log_format = _read(env, "GATEWAY_LOG_FORMAT", _DEFAULT.log_format, _log_format)
    base_url = _read(env, "STORAGE_BASE_URL", _DEFAULT.base_url, _base_url)
    access = load_access_settings(env, config_file)
    return Config(
        buckets=buckets,
        default_bucket=default,
        base_path=base_path,
        listen=_read(env, "GATEWAY_LISTEN", _DEFAULT.listen, _listen),
        http_listen=_read(env, "GATEWAY_HTTP_LISTEN", _DEFAULT.http_listen, _listen),
        health_listen=_read(env, "GATEWAY_HEALTH_LISTEN", _DEFAULT.health_listen, _listen),
        http_keepalive_timeout=_read(
            env, "GATEWAY_HTTP_KEEPALIVE_TIMEOUT", _DEFAULT.http_keepalive_timeout, parse_duration
        ),
        http_max_connections=_read(
            env, "GATEWAY_HTTP_MAX_CONNECTIONS", _DEFAULT.http_max_connections, _count
        ),
        http_linger_bytes=_read(
            env, "GATEWAY_HTTP_LINGER_BYTES", _DEFAULT.http_linger_bytes, parse_size
        ),
        http_linger_time=_read(
            env, "GATEWAY_HTTP_LINGER_TIME", _DEFAULT.http_linger_time, parse_duration
        ),
        base_url=base_url,
        url_secret=secret,
        url_expiration=expiration,
        url_max_expiration=max_expiration,
        chunk_size=chunk_size,
        max_message_size=max_message,
        max_object_size=max_object,
        shutdown_grace=_read(env, "GATEWAY_SHUTDOWN_GRACE", _DEFAULT.shutdown_grace, _seconds),
        stream_idle_timeout=_read(
            env, "GATEWAY_STREAM_IDLE_TIMEOUT", _DEFAULT.stream_idle_timeout, parse_duration
        ),
        max_streams=_read(env, "GATEWAY_MAX_STREAMS", _DEFAULT.max_streams, _count),
        max_streams_per_connection=_read(
            env,
            "GATEWAY_MAX_STREAMS_PER_CONNECTION",
            _DEFAULT.max_streams_per_connection,
            _count,
        ),
        max_buffered_bytes=_buffered_bytes(env, max_message),
        health_interval=_read(env, "GATEWAY_HEALTH_INTERVAL", _DEFAULT.health_interval, _seconds),
        log_format=log_format,
        stale_upload_age=_read(
            env, "GATEWAY_STALE_UPLOAD_AGE", _DEFAULT.stale_upload_age, parse_duration
        ),
        upload_lifetime=_read(env, "GATEWAY_UPLOAD_LIFETIME", _DEFAULT.upload_lifetime, _lifetime),
        cleanup_interval=_read(
            env, "GATEWAY_CLEANUP_INTERVAL", _DEFAULT.cleanup_interval, parse_interval
        ),
        log_level=env.get("GATEWAY_LOG_LEVEL", _DEFAULT.log_level).upper(),
        max_unfinished_upload_bytes=_read(
            env,
            "GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES",
            _DEFAULT.max_unfinished_upload_bytes,
            parse_size,
        ),
        sha256=_read(env, "GATEWAY_SHA256", _DEFAULT.sha256, parse_sha256_choice),
        config_file=config_file,
        workers=parse_workers(
            "GATEWAY_WORKERS",
            env.get("GATEWAY_WORKERS", workers_in_file),
            [name for name, bucket in buckets.items() if bucket.backend == "memory"],
        ),
        access=access,
        transport=load_transport_settings(env, access.authenticates),
        telemetry=load_telemetry_settings(env),
        pending=read_pending_settings(env),
        dedup_sweep_interval=read_dedup_interval(env),
    )

"""A bucket's configuration, and how it is read: from the environment
alone (one bucket, svc-infra's STORAGE_* variables) or from the
[buckets.NAME] tables of GATEWAY_CONFIG's file. The driver's own settings
are read by its spec (gateway.backends.registry, by the bucket's kind);
gateway/config.py reads the gateway-wide settings around these."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.backends import registry
from gateway.backends.base import Backend
from gateway.backends.observer import StoreObserver
from gateway.backends.spec import DriverSpec
from gateway.cdn_config import CdnSettings, parse_cdn
from gateway.domain.checksums import Sha256Choice
from gateway.domain.errors import GatewayError
from gateway.domain.keys import validate_bucket
from gateway.domain.lifecycle import LifecycleRule, parse_lifecycle
from gateway.domain.settings import (
    BucketTable,
    ConfigError,
    parse_duration,
    parse_sha256_choice,
    parse_size,
)
from gateway.domain.upload_policy import UploadPolicy
from gateway.domain.upload_policy_settings import parse_upload_policy
from gateway.layers.compression.backend import CompressingBackend
from gateway.layers.compression.settings import (
    CompressionSettings,
    env_compression,
    parse_compression,
)
from gateway.layers.dedup import DedupBackend
from gateway.layers.dedup.backend import DEFAULT_GRACE_S
from gateway.scan_config import ScanSettings, check_quarantines, parse_scan

# Settings any bucket table may hold, whatever its backend.
COMMON_FIELDS = (
    "max_unfinished_upload_bytes",
    "sha256",
    "upload_policy",
    "scan",
    "lifecycle",
    "cdn",
    "compression",
    "dedup",
)


@dataclass(frozen=True, slots=True)
class BucketConfig:
    name: str
    backend: str
    # The driver's settings, as its spec read them (S3Settings, LocalSettings...).
    settings: Any
    # What this bucket's unfinished resumable uploads may hold (None: the
    # gateway-wide GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES).
    max_unfinished_upload_bytes: int | None = None
    # When its writes compute the object's SHA-256 (None: GATEWAY_SHA256's choice).
    sha256: Sha256Choice | None = None
    # What its writes must be ([buckets.NAME.upload_policy]; None: anything).
    upload_policy: UploadPolicy | None = None
    # Malware scanning of its writes ([buckets.NAME.scan]; None: not scanned).
    scan: ScanSettings | None = None
    # Its lifecycle rules ([[buckets.NAME.lifecycle]]; None: no such array).
    lifecycle: tuple[LifecycleRule, ...] | None = None
    # The CDN in front of it ([buckets.NAME.cdn]; None: none).
    cdn: CdnSettings | None = None
    # Its objects stored compressed ([buckets.NAME.compression]; None: as they are).
    compression: CompressionSettings | None = None
    # Content-addressed dedup of its objects (gateway/layers/dedup).
    dedup: bool = False
    # How old an unreferenced blob must be before the sweep deletes it
    # (GATEWAY_DEDUP_GRACE).
    dedup_grace_s: float = DEFAULT_GRACE_S

    def build(self, observer: StoreObserver | None = None) -> Backend:
        """The driver serving this bucket (not yet probed), reporting its
        store requests and fsyncs to observer; wrapped in the layer that
        changes how it stores (compression or dedup) if it has one."""
        driver = registry.build(self.backend, self.settings, observer)
        if self.compression is not None:
            return CompressingBackend(driver, self.compression)
        if self.dedup:
            return DedupBackend(driver, self.dedup_grace_s)
        return driver

    def __getattr__(self, name: str) -> Any:
        """The driver's settings by its kind (bucket.s3: None on another
        backend), and their fields (bucket.path of a local bucket)."""
        if name.startswith("__") or name in ("backend", "settings"):
            raise AttributeError(name)
        if name in registry.kinds():
            return self.settings if name == self.backend else None
        return getattr(self.settings, name)


def _spec(setting: str, kind: str) -> DriverSpec[Any]:
    spec = registry.spec_of(kind)
    if spec is None:
        raise ConfigError(setting, f"{kind!r} is not one of {', '.join(registry.kinds())}")
    return spec


def _check_name(setting: str, name: str) -> None:
    try:
        validate_bucket(name)
    except GatewayError as error:
        raise ConfigError(setting, error.message) from None


def env_bucket(name: str, env: Mapping[str, str], base_path: Path) -> BucketConfig:
    """Without GATEWAY_CONFIG, the one bucket: on STORAGE_BACKEND, or else on
    the driver whose settings the environment holds (as svc-infra decides),
    or else local; its settings from the driver's variables."""
    spec = _spec("STORAGE_BACKEND", env.get("STORAGE_BACKEND") or registry.detect(env) or "local")
    _check_name("GATEWAY_DEFAULT_BUCKET", name)
    values = {field: env[var] for field, var in spec.env_names.items() if var in env}
    names = spec.env_names
    table = BucketTable(name, values, lambda field: names.get(field, field), env, base_path)
    dedup = _flag("STORAGE_DEDUP", env.get("STORAGE_DEDUP", "false"))
    compression = env_compression(env)
    _check_layers("STORAGE_DEDUP", "", compression, dedup, None, None)
    return BucketConfig(
        name,
        spec.kind,
        spec.read(table),
        compression=compression,
        dedup=dedup,
        dedup_grace_s=_grace(env),
    )


def _check_layers(
    dedup_setting: str,
    cdn_setting: str,
    compression: CompressionSettings | None,
    dedup: bool,
    scan: ScanSettings | None,
    cdn: CdnSettings | None,
) -> None:
    """Refuse the combinations whose layers do not compose (yet)."""
    if dedup and scan is not None:
        raise ConfigError(dedup_setting, "a scanning bucket cannot deduplicate (yet)")
    if dedup and compression is not None:
        raise ConfigError(
            dedup_setting, "a bucket either deduplicates or compresses, not both (yet)"
        )
    if cdn is not None and (dedup or compression is not None):
        # A CDN reads the store directly: it would serve references or
        # compressed frames, not the objects.
        raise ConfigError(
            cdn_setting,
            "a CDN serves what the store holds; a dedup or compressed bucket cannot have one",
        )


def _grace(env: Mapping[str, str]) -> float:
    text = env.get("GATEWAY_DEDUP_GRACE")
    return DEFAULT_GRACE_S if text is None else parse_duration("GATEWAY_DEDUP_GRACE", text)


def _flag(setting: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigError(setting, f"must be true or false, not {value!r}")


def file_bucket(
    name: str, table: Mapping[str, Any], env: Mapping[str, str], base_path: Path
) -> BucketConfig:
    """Bucket `name` from its [buckets.NAME] table; its driver's spec reads
    all but `backend` and the settings every bucket may have."""
    setting = f"buckets.{name}"
    _check_name(setting, name)
    spec = _spec(f"{setting}.backend", str(table.get("backend", "local")))
    own = {k: v for k, v in table.items() if k not in ("backend", *COMMON_FIELDS)}
    unknown = set(own) - set(spec.fields)
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    settings = spec.read(BucketTable(name, own, lambda field: f"{setting}.{field}", env, base_path))
    cap = table.get("max_unfinished_upload_bytes")
    if cap is not None:
        cap = parse_size(f"{setting}.max_unfinished_upload_bytes", str(cap))
    sha256 = table.get("sha256")
    if sha256 is not None:
        sha256 = parse_sha256_choice(f"{setting}.sha256", str(sha256))
    policy = table.get("upload_policy")
    if policy is not None:
        policy = parse_upload_policy(f"{setting}.upload_policy", policy)
    scan = table.get("scan")
    if scan is not None:
        scan = parse_scan(f"{setting}.scan", scan)
    lifecycle = table.get("lifecycle")
    if lifecycle is not None:
        lifecycle = parse_lifecycle(f"{setting}.lifecycle", lifecycle, spec.kind)
    cdn = table.get("cdn")
    if cdn is not None:
        cdn = parse_cdn(f"{setting}.cdn", cdn, env)
    compression = table.get("compression")
    if compression is not None:
        compression = parse_compression(f"{setting}.compression", compression)
    dedup = _flag(f"{setting}.dedup", table.get("dedup", False))
    _check_layers(f"{setting}.dedup", f"{setting}.cdn", compression, dedup, scan, cdn)
    return BucketConfig(
        name,
        spec.kind,
        settings,
        cap,
        sha256,
        upload_policy=policy,
        scan=scan,
        lifecycle=lifecycle,
        cdn=cdn,
        compression=compression,
        dedup=dedup,
        dedup_grace_s=_grace(env),
    )


def file_buckets(
    path: Path, env: Mapping[str, str], base_path: Path
) -> tuple[dict[str, BucketConfig], str, str | None]:
    """The buckets of GATEWAY_CONFIG's file, the default one's name, and the
    file's `workers` (None: not set)."""
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
        buckets[name] = file_bucket(name, table, env, base_path)
    check_quarantines({n: b.scan for n, b in buckets.items() if b.scan}, set(buckets))
    file_default = document.get("default_bucket")
    file_default = None if file_default is None else str(file_default)
    default = env.get("GATEWAY_DEFAULT_BUCKET") or file_default or next(iter(buckets))
    workers = document.get("workers")
    return buckets, default, None if workers is None else str(workers)

"""A bucket's malware-scanning settings: the [buckets.NAME.scan] table of
GATEWAY_CONFIG's file, and the scanner they build.

    [buckets.uploads.scan]
    clamd = "tcp://127.0.0.1:3310"      # or "unix:///run/clamav/clamd.ctl"
    connect_timeout = "5s"              # to connect to clamd
    idle_timeout = "30s"                # for clamd to take a chunk
    verdict_timeout = "5m"              # for the verdict after the last byte
    on_unavailable = "fail"             # or "store": stored, marked scan=skipped
    quarantine_bucket = "quarantine"    # a configured bucket; absent: deleted
    staging_prefix = ".storagegw-pending/"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.backends.base import Backend
from gateway.core.scanning import DEFAULT_STAGING_PREFIX, ScanPolicy
from gateway.domain.errors import GatewayError
from gateway.domain.keys import validate_prefix
from gateway.domain.settings import ConfigError, parse_duration
from gateway.scanning.clamd import Clamd, ClamdAddress, ClamdTimeouts

FIELDS = (
    "clamd",
    "connect_timeout",
    "idle_timeout",
    "verdict_timeout",
    "on_unavailable",
    "quarantine_bucket",
    "staging_prefix",
)
ON_UNAVAILABLE = ("fail", "store")


@dataclass(frozen=True, slots=True)
class ScanSettings:
    clamd: ClamdAddress
    timeouts: ClamdTimeouts = field(default_factory=ClamdTimeouts)
    store_unscanned: bool = False
    quarantine_bucket: str | None = None
    staging_prefix: str = DEFAULT_STAGING_PREFIX

    def policy(self, quarantine: Backend | None) -> ScanPolicy:
        """The core's policy, with its scanner; quarantine: the quarantine
        bucket's driver."""
        return ScanPolicy(
            Clamd(self.clamd, self.timeouts),
            store_unscanned=self.store_unscanned,
            quarantine_bucket=self.quarantine_bucket,
            quarantine=quarantine,
            staging_prefix=self.staging_prefix,
        )


def _duration(setting: str, table: Mapping[str, Any], name: str, default: float) -> float:
    value = table.get(name)
    return default if value is None else parse_duration(f"{setting}.{name}", str(value))


def parse_scan(setting: str, table: object) -> ScanSettings:
    """The settings of a [buckets.NAME.scan] table (setting names it)."""
    if not isinstance(table, dict):
        raise ConfigError(setting, "must be a table")
    unknown = set(table) - set(FIELDS)
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    if "clamd" not in table:
        raise ConfigError(f"{setting}.clamd", "is required (tcp://HOST:PORT or unix:///PATH)")
    try:
        address = ClamdAddress.parse(str(table["clamd"]))
    except ValueError as error:
        raise ConfigError(f"{setting}.clamd", str(error)) from None
    default = ClamdTimeouts()
    timeouts = ClamdTimeouts(
        connect=_duration(setting, table, "connect_timeout", default.connect),
        idle=_duration(setting, table, "idle_timeout", default.idle),
        verdict=_duration(setting, table, "verdict_timeout", default.verdict),
    )
    on_unavailable = str(table.get("on_unavailable", "fail"))
    if on_unavailable not in ON_UNAVAILABLE:
        raise ConfigError(
            f"{setting}.on_unavailable", f"{on_unavailable!r} is not one of fail, store"
        )
    quarantine = table.get("quarantine_bucket")
    prefix = str(table.get("staging_prefix", DEFAULT_STAGING_PREFIX))
    try:
        prefix = validate_prefix(prefix)
    except GatewayError as error:
        raise ConfigError(f"{setting}.staging_prefix", error.message) from None
    if not prefix.endswith("/"):
        raise ConfigError(f"{setting}.staging_prefix", f"{prefix!r} must end with '/'")
    return ScanSettings(
        address,
        timeouts,
        store_unscanned=on_unavailable == "store",
        quarantine_bucket=None if quarantine is None else str(quarantine),
        staging_prefix=prefix,
    )


def check_quarantines(scans: Mapping[str, ScanSettings], buckets: set[str]) -> None:
    """Each quarantine bucket is configured, and is not the scanned bucket."""
    for name, scan in scans.items():
        setting = f"buckets.{name}.scan.quarantine_bucket"
        quarantine = scan.quarantine_bucket
        if quarantine is None:
            continue
        if quarantine not in buckets:
            raise ConfigError(setting, f"{quarantine!r} is not a configured bucket")
        if quarantine == name:
            raise ConfigError(setting, "must be another bucket than the scanned one")


class _Scanned(Protocol):
    """A bucket's configuration, as far as scanning goes (BucketConfig)."""

    @property
    def scan(self) -> ScanSettings | None: ...


def scan_policies(
    buckets: Mapping[str, _Scanned], backends: Mapping[str, Backend]
) -> dict[str, ScanPolicy]:
    """The scanning buckets' policies, each with its scanner and its
    quarantine bucket's driver (from backends, by name)."""
    policies = {}
    for name, bucket in buckets.items():
        scan = bucket.scan
        if scan is not None:
            quarantine = scan.quarantine_bucket
            policies[name] = scan.policy(None if quarantine is None else backends[quarantine])
    return policies

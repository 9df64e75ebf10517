"""What reading settings takes, for the gateway's own and each driver's:
ConfigError, the size, duration and SHA-256 choice parsers, and a bucket's
settings table.

Kept below the drivers and the configuration so that a driver reads its own
settings without importing gateway.config.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.domain.checksums import Sha256Choice

KIB = 1024
MIB = 1024 * KIB


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


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


def parse_interval(setting: str, text: str) -> float:
    """How often a periodic task runs: a duration, or 0 for never (an
    operator who runs `storagegw cleanup` from a cron job instead)."""
    return 0.0 if text.strip() == "0" else parse_duration(setting, text)


def parse_positive(setting: str, text: str, *, integer: bool = True) -> float:
    """A number above zero (an int unless integer=False)."""
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} is not a number") from None
    if value <= 0:
        raise ConfigError(setting, f"must be positive, got {text}")
    return value


def parse_prefix(setting: str, text: str) -> str:
    """A key prefix inside a remote bucket: relative to the bucket's root."""
    if text.startswith("/"):
        raise ConfigError(setting, "must not start with '/'")
    return text


def parse_workers(setting: str, text: str | None, in_process_buckets: list[str]) -> int:
    """How many processes serve the gateway's ports (None: 1). Buckets whose
    backend keeps objects inside one process (memory) cannot be shared by two."""
    count = 1 if text is None else int(parse_positive(setting, text))
    if count > 1 and in_process_buckets:
        raise ConfigError(
            setting,
            f"{count} worker processes cannot share the memory backend, which keeps "
            f"objects inside one process (bucket(s) {', '.join(sorted(in_process_buckets))}): "
            "use 1 worker, or a local, S3 or GCS bucket",
        )
    return count


def parse_sha256_choice(setting: str, text: str) -> Sha256Choice:
    """When a bucket computes its objects' SHA-256: always or on_request."""
    try:
        return Sha256Choice(text.strip().lower())
    except ValueError:
        choices = " or ".join(choice.value for choice in Sha256Choice)
        raise ConfigError(setting, f"{text!r} is not {choices}") from None


@dataclass(frozen=True, slots=True)
class BucketTable:
    """One bucket's driver settings as read: from its [buckets.NAME] table in
    the TOML file, or from the environment for the single-bucket setup.

    name_of(field) is what errors call a field (buckets.media.part_size, or
    STORAGE_S3_PART_SIZE); env holds the process's non-empty variables, for
    the process-wide defaults some drivers honour (as their client libraries
    would); base_path is STORAGE_BASE_PATH.
    """

    bucket: str
    values: Mapping[str, Any]
    name_of: Callable[[str], str]
    env: Mapping[str, str]
    base_path: Path

    def __contains__(self, field: str) -> bool:
        return field in self.values

    def text(self, field: str, default: str = "") -> str:
        return str(self.values.get(field, default))

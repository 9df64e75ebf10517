"""A bucket's compression settings: the [buckets.NAME.compression] table, or
for the one bucket of an environment-only gateway GATEWAY_COMPRESSION=zstd
(with GATEWAY_COMPRESSION_TYPES, a comma-separated list of type patterns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.domain.settings import ConfigError, parse_size
from gateway.domain.type_rules import essence, matches_any, valid_pattern

DEFAULT_TYPES = (
    "text/*",
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/javascript",
    "application/sql",
    "application/x-sh",
    "image/svg+xml",
)
# Types whose bytes are compressed already (or are media codecs): never
# compressed again, whatever the patterns say.
NEVER_TYPES = (
    "image/*",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/x-rar-compressed",
    "application/x-brotli",
    "application/x-lz4",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/epub+zip",
    "application/java-archive",
)
# Except these images, which are text.
TEXT_IMAGES = ("image/svg+xml",)
FIELDS = ("types", "min_savings", "level", "frame_size")
MIN_FRAME = 64 * 1024
MAX_FRAME = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CompressionSettings:
    # Type patterns (type/subtype, type/*, */*) of what is compressed.
    types: tuple[str, ...] = DEFAULT_TYPES
    # The fraction of the size compression must save on the first frame, else
    # the object is stored as it is.
    min_savings: float = 0.1
    # zstd's level (1 fast .. 19 small; 3 is zstd's default).
    level: int = 3
    # Original bytes per frame: the unit a range read decompresses.
    frame_size: int = 1024 * 1024

    def compresses(self, content_type: str) -> bool:
        """Whether objects of content_type are compressed (when it saves)."""
        media_type = essence(content_type)
        if matches_any(NEVER_TYPES, media_type) and media_type not in TEXT_IMAGES:
            return False
        return matches_any(self.types, media_type)


def _types(setting: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(setting, f"must be a list of type patterns, got {value!r}")
    for pattern in value:
        if not valid_pattern(pattern):
            raise ConfigError(setting, f"{pattern!r} is not type/subtype, type/* or */*")
    return tuple(p.lower() for p in value)


def parse_compression(setting: str, table: object) -> CompressionSettings:
    """The settings of table, the value of setting (buckets.NAME.compression)."""
    if not isinstance(table, Mapping):
        raise ConfigError(setting, "must be a table")
    values: Mapping[str, Any] = table
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(setting, f"unknown setting(s) {', '.join(sorted(unknown))}")
    settings = CompressionSettings()
    types = settings.types
    if "types" in values:
        types = _types(f"{setting}.types", values["types"])
    savings = values.get("min_savings", settings.min_savings)
    if isinstance(savings, bool) or not isinstance(savings, int | float) or not 0 <= savings < 1:
        raise ConfigError(
            f"{setting}.min_savings", f"must be a fraction in [0, 1), got {savings!r}"
        )
    level = values.get("level", settings.level)
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 22:
        raise ConfigError(f"{setting}.level", f"must be an integer from 1 to 22, got {level!r}")
    frame_size = settings.frame_size
    if "frame_size" in values:
        frame_size = parse_size(f"{setting}.frame_size", str(values["frame_size"]))
        if not MIN_FRAME <= frame_size <= MAX_FRAME:
            raise ConfigError(f"{setting}.frame_size", "must be from 64KiB to 64MiB")
    return CompressionSettings(types, float(savings), level, frame_size)


def env_compression(env: Mapping[str, str]) -> CompressionSettings | None:
    """The environment-only bucket's settings (None: not compressed)."""
    mode = env.get("GATEWAY_COMPRESSION", "").strip().lower()
    if mode in ("", "off", "none"):
        return None
    if mode != "zstd":
        raise ConfigError("GATEWAY_COMPRESSION", f"must be zstd or off, got {mode!r}")
    table: dict[str, Any] = {}
    types = env.get("GATEWAY_COMPRESSION_TYPES", "").strip()
    if types:
        table["types"] = [t.strip() for t in types.split(",") if t.strip()]
    return parse_compression("GATEWAY_COMPRESSION_TYPES", table)

"""Settings of one S3-compatible bucket, and how they are read from a bucket
table or the environment; kept apart from the driver so that reading the
configuration does not import aioboto3."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from gateway.backends.shared.remote_backend import SettingsChecks
from gateway.domain.settings import (
    BucketTable,
    ConfigError,
    parse_positive,
    parse_prefix,
    parse_size,
)

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * GIB
ADDRESSING_STYLES = ("auto", "path", "virtual")


@dataclass(frozen=True, slots=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    # None: botocore's default chain (AWS_ACCESS_KEY_ID..., profiles, roles).
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    addressing_style: str = "auto"
    part_size: int = 8 * MIB
    concurrency: int = 4
    storage_class: str = ""
    server_side_encryption: str = ""
    kms_key_id: str = ""

    def checks(self) -> SettingsChecks:
        """The rules read() checks too, for settings built in code."""
        return SettingsChecks(
            size_fits=part_size_fits(self.part_size),
            size_rule="part_size must be between 5 MiB and 5 GiB",
            workers=("concurrency", self.concurrency),
        )


def part_size_fits(size: int) -> bool:
    """Whether size is a part size S3 takes (5 MiB to 5 GiB)."""
    return MIN_PART_SIZE <= size <= MAX_PART_SIZE


# A bucket table's fields, S3Settings' own but for three shorter names; upper-cased
# after STORAGE_S3_, the variables.
_TABLE_NAMES = {
    "endpoint_url": "endpoint",
    "server_side_encryption": "sse",
    "kms_key_id": "sse_kms_key_id",
}
FIELDS = tuple(_TABLE_NAMES.get(each.name, each.name) for each in fields(S3Settings))
ENV_NAMES = {name: f"STORAGE_S3_{name.upper()}" for name in FIELDS}


def detect(env: Mapping[str, str]) -> bool:
    """As svc-infra decides: an S3 bucket or S3 credentials mean S3."""
    return any(ENV_NAMES[name] in env for name in ("bucket", "access_key"))


def read(table: BucketTable) -> S3Settings:
    """S3Settings from a bucket table, checked."""
    text, name_of = table.text, table.name_of
    if not text("bucket"):
        raise ConfigError(name_of("bucket"), "the S3 bucket name is required")
    part_size = 8 * 1024 * 1024
    if "part_size" in table:
        part_size = parse_size(name_of("part_size"), text("part_size"))
        if not part_size_fits(part_size):
            raise ConfigError(name_of("part_size"), "must be between 5MiB and 5GiB (S3's limits)")
    concurrency = int(parse_positive(name_of("concurrency"), text("concurrency", "4")))
    style = text("addressing_style", "auto")
    if style not in ADDRESSING_STYLES:
        raise ConfigError(
            name_of("addressing_style"), f"{style!r} is not one of {', '.join(ADDRESSING_STYLES)}"
        )
    endpoint = text("endpoint")
    if endpoint and not re.match(r"https?://", endpoint):
        raise ConfigError(name_of("endpoint"), f"{endpoint!r} must start with http:// or https://")
    return S3Settings(
        bucket=text("bucket"),
        prefix=parse_prefix(name_of("prefix"), text("prefix")),
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

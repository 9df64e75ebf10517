"""Settings of one S3-compatible bucket; kept apart from the driver so that
reading the configuration does not import aioboto3."""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MIB
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

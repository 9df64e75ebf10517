"""Settings of one Google Cloud Storage bucket, and how they are read from a
bucket table or the environment; kept apart from the driver so that reading
the configuration does not import google-cloud-storage."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from gateway.backends.shared.remote_backend import SettingsChecks
from gateway.domain.settings import (
    BucketTable,
    ConfigError,
    parse_duration,
    parse_positive,
    parse_prefix,
    parse_size,
)

KIB = 1024
MIB = 1024 * KIB
# Resumable uploads take chunks in multiples of 256 KiB (all but the last).
CHUNK_MULTIPLE = 256 * KIB
DEFAULT_CHUNK_SIZE = 8 * MIB
MAX_CHUNK_SIZE = 256 * MIB
DEFAULT_THREADS = 16
DEFAULT_RETRY_DEADLINE = 120.0  # google-cloud-storage's own default


def chunk_size_fits(size: int) -> bool:
    """Whether size is a chunk size GCS's resumable uploads take: a multiple
    of 256 KiB, at most 256 MiB."""
    return size % CHUNK_MULTIPLE == 0 and CHUNK_MULTIPLE <= size <= MAX_CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class GcsSettings:
    bucket: str
    prefix: str = ""
    # None: the credentials' project, if any (object calls need none).
    project: str | None = None
    # A credentials JSON file (service-account key, or any type google-auth
    # loads); None: Application Default Credentials.
    credentials_path: str | None = None
    # An emulator's base URL (STORAGE_EMULATOR_HOST): requests go there,
    # anonymously; a credentials file then only signs URLs.
    emulator_host: str | None = None
    # Service account whose key signs URLs through IAM signBlob, for
    # credentials that cannot sign locally (user, GCE or Workload Identity).
    signing_account: str | None = None
    # Resumable-upload chunk and download window; memory per transfer is
    # about twice this.
    chunk_size: int = DEFAULT_CHUNK_SIZE
    # The blocking client's calls run in a pool of this many threads.
    threads: int = DEFAULT_THREADS
    # How long google-cloud-storage retries 429, 5xx and connection errors.
    retry_deadline: float = DEFAULT_RETRY_DEADLINE
    storage_class: str = ""
    kms_key: str = ""

    def checks(self) -> SettingsChecks:
        """The rules read() checks too, for settings built in code."""
        return SettingsChecks(
            size_fits=chunk_size_fits(self.chunk_size),
            size_rule="chunk_size must be a multiple of 256 KiB, at most 256 MiB",
            workers=("threads", self.threads),
        )


# A bucket table's fields; STORAGE_GCS_ + the upper-cased name are the
# variables, but for emulator_host (Google's own convention).
FIELDS = tuple(field.name for field in fields(GcsSettings))
ENV_NAMES = {
    name: "STORAGE_EMULATOR_HOST" if name == "emulator_host" else f"STORAGE_GCS_{name.upper()}"
    for name in FIELDS
}
# Process-wide Google settings every GCS bucket defaults to, file buckets
# too (as google-cloud-storage and google-auth themselves would).
GOOGLE_DEFAULTS = {
    "credentials_path": "GOOGLE_APPLICATION_CREDENTIALS",
    "emulator_host": "STORAGE_EMULATOR_HOST",
}


def detect(env: Mapping[str, str]) -> bool:
    """A GCS bucket or GCS credentials (GOOGLE_APPLICATION_CREDENTIALS too)
    mean GCS; the emulator alone does not."""
    names = (ENV_NAMES["bucket"], ENV_NAMES["credentials_path"])
    return any(name in env for name in (*names, GOOGLE_DEFAULTS["credentials_path"]))


def read(table: BucketTable) -> GcsSettings:
    """GcsSettings from a bucket table, checked; GOOGLE_DEFAULTS' variables
    fill the fields the table leaves empty."""
    name_of = table.name_of

    def text(name: str, default: str = "") -> str:
        variable = GOOGLE_DEFAULTS.get(name)
        google = table.env.get(variable) if variable else None
        return str(table.values.get(name) or google or default)

    if not text("bucket"):
        raise ConfigError(name_of("bucket"), "the GCS bucket name is required")
    chunk_size = DEFAULT_CHUNK_SIZE
    if "chunk_size" in table:
        chunk_size = parse_size(name_of("chunk_size"), text("chunk_size"))
        if not chunk_size_fits(chunk_size):
            raise ConfigError(
                name_of("chunk_size"),
                "must be a multiple of 256KiB (resumable uploads' unit), at most 256MiB",
            )
    threads = int(parse_positive(name_of("threads"), text("threads", "16")))
    deadline = parse_duration(name_of("retry_deadline"), text("retry_deadline", "120"))
    emulator = text("emulator_host")
    if emulator and not re.fullmatch(r"(https?://)?[^/\s]+/?", emulator):
        raise ConfigError(
            name_of("emulator_host"), f"{emulator!r} is not host:port or an http(s) URL"
        )
    return GcsSettings(
        bucket=text("bucket"),
        prefix=parse_prefix(name_of("prefix"), text("prefix")),
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

"""Settings of one Google Cloud Storage bucket; kept apart from the driver so
that reading the configuration does not import google-cloud-storage."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
# Resumable uploads take chunks in multiples of 256 KiB (all but the last).
CHUNK_MULTIPLE = 256 * KIB
DEFAULT_CHUNK_SIZE = 8 * MIB
MAX_CHUNK_SIZE = 256 * MIB
DEFAULT_THREADS = 16
DEFAULT_RETRY_DEADLINE = 120.0  # google-cloud-storage's own default


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

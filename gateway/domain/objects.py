"""The values every layer speaks in: an object's metadata, a write's options
and checksums, a copy within one backend, a listing query and page,
preconditions, what a storage is asked to presign and what it answers, a
resumable upload's status.

Plain frozen dataclasses with no I/O: the core passes them to drivers, and the
rpc and http fronts convert them to and from their wire forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a driver knows of a stored object."""

    key: str
    size: int
    etag: str
    generation: int
    create_time_ns: int
    update_time_ns: int
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: Mapping[str, str] = field(default_factory=dict)
    crc32c: int | None = None
    sha256: bytes | None = None
    storage_class: str = ""


@dataclass(frozen=True, slots=True)
class Conditions:
    """Preconditions on the current object; the defaults impose nothing."""

    if_match: str = ""
    if_none_match: str = ""
    if_generation_match: int | None = None
    if_generation_not_match: int | None = None

    @property
    def any(self) -> bool:
        return bool(
            self.if_match
            or self.if_none_match
            or self.if_generation_match is not None
            or self.if_generation_not_match is not None
        )


NO_CONDITIONS = Conditions()


@dataclass(frozen=True, slots=True)
class Checksums:
    """Whole-object checksums computed by the gateway while streaming
    (sha256 None: not computed, the bucket's choice)."""

    crc32c: int
    sha256: bytes | None
    size: int


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """Everything about a new object except its bytes."""

    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: Mapping[str, str] = field(default_factory=dict)
    conditions: Conditions = NO_CONDITIONS
    # Declared size, when the client gave one: lets a driver choose single-shot
    # vs multipart up front or refuse early against a quota.
    size_hint: int | None = None
    storage_class: str = ""
    server_side_encryption: str = ""
    kms_key_id: str = ""
    # The object's SHA-256 when the client promised it before its bytes (the
    # gateway checks the promise before the commit): lets a dedup bucket skip
    # storing bytes it holds already. Drivers ignore it.
    sha256_hint: bytes | None = None


@dataclass(frozen=True, slots=True)
class CopyRequest:
    """What a copy within one backend asks a driver for: the object at
    source_key, when source_conditions hold, stored again at destination_key.

    options describe the new object; options.conditions apply to the
    destination. Without replace_metadata the source's content type and
    metadata are kept and options' are ignored."""

    source_key: str
    destination_key: str
    _: KW_ONLY
    source_conditions: Conditions = NO_CONDITIONS
    options: WriteOptions = field(default_factory=WriteOptions)
    replace_metadata: bool = False

    def content_of(self, source: ObjectMeta) -> tuple[str, dict[str, str]]:
        """The new object's content type and metadata (a copy the driver may
        add to): options' with replace_metadata, else the source's."""
        if self.replace_metadata:
            return self.options.content_type, dict(self.options.metadata)
        return source.content_type, dict(source.metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """What a List asks a driver for: one page in lexicographic (UTF-8 byte)
    key order of the objects under prefix, after start_after and after the
    position page_token resumes from.

    A page holds at most page_size entries (objects plus common prefixes)
    and, when max_bytes is given, entries of at most max_bytes by
    gateway.domain.listing.entry_bytes/prefix_bytes (at least one entry); a
    page cut short has a next_page_token that resumes right after its last
    entry."""

    page_size: int
    prefix: str = ""
    # Keys with it past the prefix roll up into one common prefix ("": none).
    delimiter: str = ""
    start_after: str = ""
    # A previous page's next_page_token ("": the first page).
    page_token: str = ""
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing."""

    objects: list[ObjectMeta]
    common_prefixes: list[str]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class Presigned:
    """A URL signed by the storage itself, and what its holder must send."""

    url: str
    # Headers to send with the request, exactly as given.
    headers: dict[str, str] = field(default_factory=dict)
    # POST: form fields to send before the "file" field, exactly as given.
    form_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """A resumable upload as its backend holds it."""

    # Bytes held durably: a continuation starts here (or below, where the
    # gateway skips what it already has).
    persisted_size: int
    # The gateway's own record as of persisted_size (its running checksums and
    # the upload's promises), stored verbatim by the driver and opaque to it.
    state: bytes
    # The committed object once the upload was finished.
    complete: ObjectMeta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlOptions:
    """What a signed URL allows besides its method and lifetime; the same
    options whoever asks (SignUrl), signs (a presigning storage, or the
    gateway's UrlSigner) or serves the URL (the gateway's HTTP listener)."""

    # GET: answer with Content-Disposition attachment, named filename (or
    # the key's last segment).
    download: bool = False
    filename: str = ""
    # PUT and POST: the content type the upload must declare.
    content_type: str = ""
    # POST: the bounds of the object's size, in the policy the storage checks
    # (a signed PUT cannot bound its body).
    max_size: int | None = None
    min_size: int | None = None

    def option_values(self) -> dict[str, Any]:
        """These options by name, to make another value holding them of (a
        request that subclasses UrlOptions holds them as keyword arguments)."""
        return {option.name: getattr(self, option.name) for option in fields(UrlOptions)}


@dataclass(frozen=True, slots=True)
class PresignRequest(UrlOptions):
    """What a storage that signs URLs itself is asked to sign: a URL allowing
    method (GET, PUT or POST) on key for expires_in_s seconds, with the options
    (keyword-only). The gateway validated it against the method first
    (core/signing.UrlSigner.check)."""

    key: str
    method: str
    expires_in_s: int

"""Errors the gateway raises, each with a stable machine-readable reason.

Drivers and helpers raise these; they know nothing of gRPC or HTTP. The reasons
are the contract's ErrorReason enum (proto/storagegw/v1/error_reason.proto), and
REASON_STATUS below is the one table of how each is answered: the gRPC error
interceptor (gateway/rpc/status.py) and the signed-URL listener (gateway/http/)
both read it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, NamedTuple


class Reason(StrEnum):
    """ErrorInfo reasons: the names of the proto's ErrorReason values (less
    ERROR_REASON_UNSPECIFIED), which are also the strings sent on the wire."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_KEY = "INVALID_KEY"
    INVALID_BUCKET = "INVALID_BUCKET"
    INVALID_STREAM = "INVALID_STREAM"
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"  # noqa: S105 - a reason, not a secret
    INVALID_EXPIRY = "INVALID_EXPIRY"
    INVALID_UPLOAD_ID = "INVALID_UPLOAD_ID"
    UNSUPPORTED_OPTION = "UNSUPPORTED_OPTION"
    BUCKET_NOT_FOUND = "BUCKET_NOT_FOUND"
    OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
    UPLOAD_EXPIRED = "UPLOAD_EXPIRED"
    UPLOAD_NOT_FOUND = "UPLOAD_NOT_FOUND"
    INVALID_WRITE_OFFSET = "INVALID_WRITE_OFFSET"
    UPLOAD_BUSY = "UPLOAD_BUSY"
    STREAM_IDLE_TIMEOUT = "STREAM_IDLE_TIMEOUT"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    INVALID_CONTENT_TYPE = "INVALID_CONTENT_TYPE"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    NOT_MODIFIED = "NOT_MODIFIED"
    KEY_CONFLICT = "KEY_CONFLICT"
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"
    SIZE_MISMATCH = "SIZE_MISMATCH"
    OBJECT_TOO_LARGE = "OBJECT_TOO_LARGE"
    OBJECT_TOO_SMALL = "OBJECT_TOO_SMALL"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    INVALID_RANGE = "INVALID_RANGE"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INTERNAL = "INTERNAL"
    CREDENTIALS_MISSING = "CREDENTIALS_MISSING"
    CREDENTIALS_INVALID = "CREDENTIALS_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105 - a reason, not a secret
    TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105 - a reason, not a secret
    ACCESS_DENIED = "ACCESS_DENIED"
    TOO_MANY_KEYS = "TOO_MANY_KEYS"
    TYPE_NOT_ALLOWED = "TYPE_NOT_ALLOWED"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    KEY_SUFFIX_NOT_ALLOWED = "KEY_SUFFIX_NOT_ALLOWED"
    METADATA_REQUIRED = "METADATA_REQUIRED"
    MALWARE_DETECTED = "MALWARE_DETECTED"
    SCANNER_UNAVAILABLE = "SCANNER_UNAVAILABLE"
    ROUTE_NOT_AVAILABLE = "ROUTE_NOT_AVAILABLE"
    ROUTE_METHOD_NOT_ALLOWED = "ROUTE_METHOD_NOT_ALLOWED"


# The names of grpc.StatusCode and google.rpc.Code (this layer imports neither).
GrpcCode = Literal[
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]


class ReasonStatus(NamedTuple):
    """How an error with a reason is answered on each front."""

    grpc_code: GrpcCode
    http_status: int  # of the signed-URL listener


# Every Reason has a row (tests/core/test_error_reasons.py checks it against the proto).
# Some reasons cannot arise on a signed URL (uploads, listings, conditional reads);
# their HTTP status is what the listener would answer if one ever did.
REASON_STATUS: Mapping[Reason, ReasonStatus] = MappingProxyType(
    {
        Reason.INVALID_ARGUMENT: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_KEY: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_BUCKET: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_STREAM: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_PAGE_TOKEN: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_EXPIRY: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.INVALID_UPLOAD_ID: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.UNSUPPORTED_OPTION: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.BUCKET_NOT_FOUND: ReasonStatus("NOT_FOUND", 404),
        Reason.OBJECT_NOT_FOUND: ReasonStatus("NOT_FOUND", 404),
        Reason.UPLOAD_EXPIRED: ReasonStatus("NOT_FOUND", 404),
        Reason.UPLOAD_NOT_FOUND: ReasonStatus("NOT_FOUND", 404),
        Reason.INVALID_WRITE_OFFSET: ReasonStatus("OUT_OF_RANGE", 400),
        Reason.UPLOAD_BUSY: ReasonStatus("ABORTED", 409),
        Reason.STREAM_IDLE_TIMEOUT: ReasonStatus("DEADLINE_EXCEEDED", 408),
        Reason.TOO_MANY_STREAMS: ReasonStatus("RESOURCE_EXHAUSTED", 429),
        Reason.INVALID_CONTENT_TYPE: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.PRECONDITION_FAILED: ReasonStatus("FAILED_PRECONDITION", 412),
        Reason.NOT_MODIFIED: ReasonStatus("FAILED_PRECONDITION", 304),
        Reason.KEY_CONFLICT: ReasonStatus("FAILED_PRECONDITION", 409),
        # The signed-URL client sent the data: its fault, not the gateway's.
        Reason.CHECKSUM_MISMATCH: ReasonStatus("DATA_LOSS", 400),
        Reason.SIZE_MISMATCH: ReasonStatus("DATA_LOSS", 400),
        Reason.OBJECT_TOO_LARGE: ReasonStatus("RESOURCE_EXHAUSTED", 413),
        Reason.OBJECT_TOO_SMALL: ReasonStatus("OUT_OF_RANGE", 400),
        Reason.QUOTA_EXCEEDED: ReasonStatus("RESOURCE_EXHAUSTED", 507),
        Reason.INVALID_RANGE: ReasonStatus("OUT_OF_RANGE", 416),
        Reason.NOT_IMPLEMENTED: ReasonStatus("UNIMPLEMENTED", 501),
        Reason.BACKEND_UNAVAILABLE: ReasonStatus("UNAVAILABLE", 503),
        Reason.PERMISSION_DENIED: ReasonStatus("PERMISSION_DENIED", 403),
        Reason.INTERNAL: ReasonStatus("INTERNAL", 500),
        Reason.CREDENTIALS_MISSING: ReasonStatus("UNAUTHENTICATED", 401),
        Reason.CREDENTIALS_INVALID: ReasonStatus("UNAUTHENTICATED", 401),
        Reason.TOKEN_EXPIRED: ReasonStatus("UNAUTHENTICATED", 401),
        Reason.TOKEN_INVALID: ReasonStatus("UNAUTHENTICATED", 401),
        Reason.ACCESS_DENIED: ReasonStatus("PERMISSION_DENIED", 403),
        Reason.TOO_MANY_KEYS: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.TYPE_NOT_ALLOWED: ReasonStatus("INVALID_ARGUMENT", 415),
        Reason.TYPE_MISMATCH: ReasonStatus("INVALID_ARGUMENT", 415),
        Reason.KEY_SUFFIX_NOT_ALLOWED: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.METADATA_REQUIRED: ReasonStatus("INVALID_ARGUMENT", 400),
        Reason.MALWARE_DETECTED: ReasonStatus("INVALID_ARGUMENT", 422),
        Reason.SCANNER_UNAVAILABLE: ReasonStatus("UNAVAILABLE", 503),
        Reason.ROUTE_NOT_AVAILABLE: ReasonStatus("FAILED_PRECONDITION", 400),
        Reason.ROUTE_METHOD_NOT_ALLOWED: ReasonStatus("INVALID_ARGUMENT", 400),
    }
)


class GatewayError(Exception):
    """An error with a reason, a human message and context for ErrorInfo."""

    def __init__(self, reason: Reason, message: str, **metadata: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata: Mapping[str, str] = {k: str(v) for k, v in metadata.items() if v is not None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.value}: {self.message})"


@dataclass(frozen=True, eq=False)
class ErrorTemplate:
    """One kind of GatewayError, declared once: its reason, its message with a
    slot for each fact ("{key!r}", "{size}") and which facts go into ErrorInfo.

    Calling it with exactly its fields builds the error; the message and the
    metadata are filled from the same values, so they cannot drift apart.
    ErrorInfo carries each value as the message writes it (with its format
    spec, without a !r conversion's quotes). mypy cannot check the field names,
    so a call with other fields is a TypeError, and
    tests/core/test_error_templates.py checks every call in gateway/.
    """

    reason: Reason
    message: str
    # The fields ErrorInfo carries, by default those of the message; a name the
    # message does not use is a field of ErrorInfo only.
    metadata: tuple[str, ...] | None = field(default=None, kw_only=True)
    # Values of fields the template supplies itself.
    fixed: Mapping[str, object] = field(default_factory=dict, kw_only=True)
    # What a call must pass: every field less the fixed ones.
    fields: frozenset[str] = field(init=False)
    _specs: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        specs = _format_specs(self.message)
        named = set(specs) | set(self.metadata or ())
        if not set(self.fixed) <= named:
            raise ValueError(f"fixed fields {sorted(set(self.fixed) - named)} are not used")
        # Frozen: the derived values are set once, here.
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "_specs", specs)
        object.__setattr__(self, "fields", frozenset(named - set(self.fixed)))

    def __call__(self, **fields: object) -> GatewayError:
        if fields.keys() != self.fields:
            missing = sorted(self.fields - fields.keys())
            unexpected = sorted(fields.keys() - self.fields)
            raise TypeError(
                f"the {self.reason.value} error {self.message!r} takes the fields "
                f"{sorted(self.fields)}: missing {missing}, unexpected {unexpected}"
            )
        values = {**fields, **self.fixed}
        carried = self._specs.keys() if self.metadata is None else self.metadata
        return GatewayError(
            self.reason,
            self.message.format(**values),
            **{name: _as_written(values[name], self._specs.get(name)) for name in carried},
        )


def _format_specs(message: str) -> dict[str, str]:
    """The format spec of each field of a message template, in order."""
    specs: dict[str, str] = {}
    for _, name, spec, _ in string.Formatter().parse(message):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"{message!r}: {{{name}}} is not a field name")
        if specs.setdefault(name, spec or "") != (spec or ""):
            raise ValueError(f"{message!r}: {{{name}}} is written with two format specs")
    return specs


def _as_written(value: object, spec: str | None) -> object:
    # No spec: GatewayError's str(), which also drops None.
    return format(value, spec) if spec else value


def invalid_argument(message: str, **metadata: object) -> GatewayError:
    return GatewayError(Reason.INVALID_ARGUMENT, message, **metadata)


def invalid_stream(message: str) -> GatewayError:
    return GatewayError(Reason.INVALID_STREAM, message)


# The errors raised in more than one layer or driver; call each with keywords,
# e.g. raise object_not_found(key=key).

upload_not_found = ErrorTemplate(
    Reason.UPLOAD_NOT_FOUND,
    "no resumable upload of {key!r} with this id: it was aborted, cleaned up or "
    "never started; start a new one",
)
# For a stream whose upload an AbortUpload discarded while it was writing.
upload_aborted = ErrorTemplate(
    Reason.UPLOAD_NOT_FOUND,
    "the upload of {key!r} was aborted (AbortUpload) while this stream was writing "
    "it; nothing was stored; start a new upload",
)
upload_busy = ErrorTemplate(
    Reason.UPLOAD_BUSY, "another stream is writing the upload of {key!r}; retry when it ends"
)
object_not_found = ErrorTemplate(Reason.OBJECT_NOT_FOUND, "object {key!r} not found")
precondition_failed = ErrorTemplate(
    Reason.PRECONDITION_FAILED, "precondition {condition} failed for object {key!r}"
)
# The version a reader began with is gone: its later bytes would be another
# object's (the GCS reader's next window, the S3 reader taking a body up again).
changed_while_read = ErrorTemplate(
    Reason.OBJECT_NOT_FOUND, "object {key!r} was replaced or deleted while being read"
)
not_modified = ErrorTemplate(
    Reason.NOT_MODIFIED,
    "object {key!r} matches {condition}: not modified",
    fixed={"condition": "if_none_match"},
)
key_conflict = ErrorTemplate(
    Reason.KEY_CONFLICT, "key {key!r} conflicts: {detail}", metadata=("key",)
)
checksum_mismatch = ErrorTemplate(
    Reason.CHECKSUM_MISMATCH,
    "{checksum} mismatch: expected {expected}, computed {actual}; nothing was stored",
)
size_mismatch = ErrorTemplate(
    Reason.SIZE_MISMATCH,
    "declared size {expected} bytes but received {actual}; nothing was stored",
)
object_too_large = ErrorTemplate(
    Reason.OBJECT_TOO_LARGE,
    "object of {size} bytes exceeds the gateway's limit of {limit} bytes",
)
quota_exceeded = ErrorTemplate(
    Reason.QUOTA_EXCEEDED,
    "storing this object would use {needed} bytes, over the quota of {quota} bytes",
)
# A storage refused a read's range (HTTP 416).
range_not_satisfiable = ErrorTemplate(
    Reason.INVALID_RANGE, "the requested range of {key!r} is not satisfiable"
)
invalid_range = ErrorTemplate(
    Reason.INVALID_RANGE, "read offset {offset} is past the end of the object ({size} bytes)"
)
unsupported = ErrorTemplate(
    Reason.UNSUPPORTED_OPTION, "{option} is not supported by the {backend} backend"
)
backend_unavailable = ErrorTemplate(
    Reason.BACKEND_UNAVAILABLE, "{backend} backend unavailable: {detail}", metadata=("backend",)
)


# The storage's refusals of credentials: one message for every driver, whose
# ErrorInfo carries the driver's own context (its bucket and error code) rather
# than the message's fields, so these are not templates.


def credentials_refused(
    what: str, store: str, bucket: str, detail: str, **context: object
) -> GatewayError:
    """The storage refused the gateway's credentials; detail is the storage's
    own word for it (an error code, an HTTP status), context its metadata."""
    return GatewayError(
        Reason.PERMISSION_DENIED,
        f"{what} on bucket {bucket!r}: the {store} credentials were refused ({detail})",
        **context,
    )


def no_credentials(what: str, store: str, bucket: str, **context: object) -> GatewayError:
    """The storage's client library found no credentials to use."""
    return GatewayError(
        Reason.PERMISSION_DENIED,
        f"{what}: no usable {store} credentials were found for bucket {bucket!r}",
        **context,
    )

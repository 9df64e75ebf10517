"""Errors the gateway raises, each with a stable machine-readable reason.

Drivers and helpers raise these; they know nothing of gRPC or HTTP. The reasons
are the contract's ErrorReason enum (proto/storagegw/v1/error_reason.proto), and
REASON_STATUS below is the one table of how each is answered: the gRPC error
interceptor (gateway/rpc/status.py) and the signed-URL listener (gateway/http/)
both read it.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def invalid_argument(message: str, **metadata: object) -> GatewayError:
    return GatewayError(Reason.INVALID_ARGUMENT, message, **metadata)


def invalid_stream(message: str) -> GatewayError:
    return GatewayError(Reason.INVALID_STREAM, message)


def upload_not_found(key: str) -> GatewayError:
    return GatewayError(
        Reason.UPLOAD_NOT_FOUND,
        f"no resumable upload of {key!r} with this id: it was aborted, cleaned up or "
        "never started; start a new one",
        key=key,
    )


def upload_aborted(key: str) -> GatewayError:
    """For a stream whose upload an AbortUpload discarded while it was writing."""
    return GatewayError(
        Reason.UPLOAD_NOT_FOUND,
        f"the upload of {key!r} was aborted (AbortUpload) while this stream was writing "
        "it; nothing was stored; start a new upload",
        key=key,
    )


def upload_busy(key: str) -> GatewayError:
    return GatewayError(
        Reason.UPLOAD_BUSY,
        f"another stream is writing the upload of {key!r}; retry when it ends",
        key=key,
    )


def object_not_found(key: str) -> GatewayError:
    return GatewayError(Reason.OBJECT_NOT_FOUND, f"object {key!r} not found", key=key)


def precondition_failed(key: str, condition: str) -> GatewayError:
    return GatewayError(
        Reason.PRECONDITION_FAILED,
        f"precondition {condition} failed for object {key!r}",
        key=key,
        condition=condition,
    )


def not_modified(key: str) -> GatewayError:
    return GatewayError(
        Reason.NOT_MODIFIED,
        f"object {key!r} matches if_none_match: not modified",
        key=key,
        condition="if_none_match",
    )


def key_conflict(key: str, detail: str) -> GatewayError:
    return GatewayError(Reason.KEY_CONFLICT, f"key {key!r} conflicts: {detail}", key=key)


def checksum_mismatch(what: str, expected: str, actual: str) -> GatewayError:
    return GatewayError(
        Reason.CHECKSUM_MISMATCH,
        f"{what} mismatch: expected {expected}, computed {actual}; nothing was stored",
        checksum=what,
        expected=expected,
        actual=actual,
    )


def size_mismatch(expected: int, actual: int) -> GatewayError:
    return GatewayError(
        Reason.SIZE_MISMATCH,
        f"declared size {expected} bytes but received {actual}; nothing was stored",
        expected=expected,
        actual=actual,
    )


def object_too_large(limit: int, size: int) -> GatewayError:
    return GatewayError(
        Reason.OBJECT_TOO_LARGE,
        f"object of {size} bytes exceeds the gateway's limit of {limit} bytes",
        limit=limit,
        size=size,
    )


def quota_exceeded(quota: int, needed: int) -> GatewayError:
    return GatewayError(
        Reason.QUOTA_EXCEEDED,
        f"storing this object would use {needed} bytes, over the quota of {quota} bytes",
        quota=quota,
        needed=needed,
    )


def range_not_satisfiable(key: str) -> GatewayError:
    """A storage refused a read's range (HTTP 416)."""
    return GatewayError(
        Reason.INVALID_RANGE, f"the requested range of {key!r} is not satisfiable", key=key
    )


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


def invalid_range(offset: int, size: int) -> GatewayError:
    return GatewayError(
        Reason.INVALID_RANGE,
        f"read offset {offset} is past the end of the object ({size} bytes)",
        offset=offset,
        size=size,
    )


def unsupported(option: str, backend: str) -> GatewayError:
    return GatewayError(
        Reason.UNSUPPORTED_OPTION,
        f"{option} is not supported by the {backend} backend",
        option=option,
        backend=backend,
    )


def backend_unavailable(backend: str, detail: str) -> GatewayError:
    return GatewayError(
        Reason.BACKEND_UNAVAILABLE, f"{backend} backend unavailable: {detail}", backend=backend
    )

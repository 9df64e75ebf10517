"""Errors the gateway raises, each with a stable machine-readable reason.

Drivers and helpers raise these; they know nothing of gRPC. The servicer's
error interceptor (gateway/status.py) maps each reason to a gRPC status code
and sends it with a google.rpc.ErrorInfo, so the mapping lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Reason(StrEnum):
    """ErrorInfo reasons; the README's error table lists them with codes."""

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

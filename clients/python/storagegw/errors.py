"""Typed exceptions for gateway errors.

The gateway sends every error with a google.rpc.ErrorInfo in the
`grpc-status-details-bin` trailer. Its `reason` is stable and picks the most
specific exception class (every value of the contract's ErrorReason enum,
storagegw.v1.error_reason_pb2, has one); the gRPC status code is the fallback
when a reason is missing or unknown (for example errors raised by gRPC itself, such as
UNAVAILABLE when the gateway cannot be reached).

The details are decoded by storagegw._status_details.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from storagegw._error_types import (
    Aborted,
    AccessDenied,
    BucketNotFound,
    Cancelled,
    ChecksumMismatch,
    CredentialsInvalid,
    CredentialsMissing,
    DataLoss,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    InvalidKey,
    InvalidRange,
    InvalidUploadId,
    InvalidWriteOffset,
    KeyConflict,
    MalwareDetected,
    NotFound,
    NotModified,
    ObjectNotFound,
    ObjectTooLarge,
    ObjectTooSmall,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    ResourceExhausted,
    RouteNotAvailable,
    ScannerUnavailable,
    SizeMismatch,
    StorageError,
    StreamIdleTimeout,
    TokenExpired,
    TokenInvalid,
    TooManyKeys,
    TooManyStreams,
    TypeMismatch,
    TypeNotAllowed,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    UploadBusy,
    UploadExpired,
    UploadNotFound,
    UploadRefused,
)
from storagegw._status_details import decode_status_details, status_details
from storagegw.v1.error_reason_pb2 import ErrorReason

__all__ = [
    "Aborted",
    "AccessDenied",
    "BucketNotFound",
    "Cancelled",
    "ChecksumMismatch",
    "CredentialsInvalid",
    "CredentialsMissing",
    "DataLoss",
    "DeadlineExceeded",
    "Internal",
    "InvalidArgument",
    "InvalidKey",
    "InvalidRange",
    "InvalidUploadId",
    "InvalidWriteOffset",
    "KeyConflict",
    "MalwareDetected",
    "NotFound",
    "NotModified",
    "ObjectNotFound",
    "ObjectTooLarge",
    "ObjectTooSmall",
    "PermissionDenied",
    "PreconditionFailed",
    "QuotaExceeded",
    "ResourceExhausted",
    "RouteNotAvailable",
    "ScannerUnavailable",
    "SizeMismatch",
    "StorageError",
    "StreamIdleTimeout",
    "TokenExpired",
    "TokenInvalid",
    "TooManyKeys",
    "TooManyStreams",
    "TypeMismatch",
    "TypeNotAllowed",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "UploadBusy",
    "UploadExpired",
    "UploadNotFound",
    "UploadRefused",
    "from_rpc_error",
]


# One class for each ErrorReason value but ERROR_REASON_UNSPECIFIED
# (tests/core/test_error_reasons.py checks that none is missing).
_CLASS_OF_REASON: dict[ErrorReason.ValueType, type[StorageError]] = {
    ErrorReason.INVALID_ARGUMENT: InvalidArgument,
    ErrorReason.INVALID_KEY: InvalidKey,
    ErrorReason.INVALID_BUCKET: InvalidArgument,
    ErrorReason.INVALID_STREAM: InvalidArgument,
    ErrorReason.INVALID_PAGE_TOKEN: InvalidArgument,
    ErrorReason.INVALID_EXPIRY: InvalidArgument,
    ErrorReason.INVALID_UPLOAD_ID: InvalidUploadId,
    ErrorReason.UNSUPPORTED_OPTION: InvalidArgument,
    ErrorReason.BUCKET_NOT_FOUND: BucketNotFound,
    ErrorReason.OBJECT_NOT_FOUND: ObjectNotFound,
    ErrorReason.UPLOAD_EXPIRED: UploadExpired,
    ErrorReason.UPLOAD_NOT_FOUND: UploadNotFound,
    ErrorReason.INVALID_WRITE_OFFSET: InvalidWriteOffset,
    ErrorReason.UPLOAD_BUSY: UploadBusy,
    ErrorReason.STREAM_IDLE_TIMEOUT: StreamIdleTimeout,
    ErrorReason.TOO_MANY_STREAMS: TooManyStreams,
    ErrorReason.INVALID_CONTENT_TYPE: InvalidArgument,
    ErrorReason.PRECONDITION_FAILED: PreconditionFailed,
    ErrorReason.NOT_MODIFIED: NotModified,
    ErrorReason.KEY_CONFLICT: KeyConflict,
    ErrorReason.CHECKSUM_MISMATCH: ChecksumMismatch,
    ErrorReason.SIZE_MISMATCH: SizeMismatch,
    ErrorReason.OBJECT_TOO_LARGE: ObjectTooLarge,
    ErrorReason.OBJECT_TOO_SMALL: ObjectTooSmall,
    ErrorReason.QUOTA_EXCEEDED: QuotaExceeded,
    ErrorReason.INVALID_RANGE: InvalidRange,
    ErrorReason.NOT_IMPLEMENTED: Unimplemented,
    ErrorReason.BACKEND_UNAVAILABLE: Unavailable,
    ErrorReason.PERMISSION_DENIED: PermissionDenied,
    ErrorReason.INTERNAL: Internal,
    ErrorReason.CREDENTIALS_MISSING: CredentialsMissing,
    ErrorReason.CREDENTIALS_INVALID: CredentialsInvalid,
    ErrorReason.TOKEN_EXPIRED: TokenExpired,
    ErrorReason.TOKEN_INVALID: TokenInvalid,
    ErrorReason.ACCESS_DENIED: AccessDenied,
    ErrorReason.TOO_MANY_KEYS: TooManyKeys,
    ErrorReason.TYPE_NOT_ALLOWED: TypeNotAllowed,
    ErrorReason.TYPE_MISMATCH: TypeMismatch,
    ErrorReason.KEY_SUFFIX_NOT_ALLOWED: UploadRefused,
    ErrorReason.METADATA_REQUIRED: UploadRefused,
    ErrorReason.MALWARE_DETECTED: MalwareDetected,
    ErrorReason.SCANNER_UNAVAILABLE: ScannerUnavailable,
    ErrorReason.ROUTE_NOT_AVAILABLE: RouteNotAvailable,
    ErrorReason.ROUTE_METHOD_NOT_ALLOWED: InvalidArgument,
}
# ErrorInfo.reason carries the value's name, not its number.
_BY_REASON: dict[str, type[StorageError]] = {
    ErrorReason.Name(reason): cls for reason, cls in _CLASS_OF_REASON.items()
}

_BY_CODE: dict[grpc.StatusCode, type[StorageError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRange,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailed,
    grpc.StatusCode.ALREADY_EXISTS: PreconditionFailed,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.ABORTED: Aborted,
}


def error_class(reason: str | None, code: grpc.StatusCode) -> type[StorageError]:
    """The exception class for a reason, falling back to the status code."""
    if reason and reason in _BY_REASON:
        return _BY_REASON[reason]
    return _BY_CODE.get(code, StorageError)


def from_rpc_error(err: grpc.RpcError) -> StorageError:
    """Convert a grpc.RpcError (sync or grpc.aio) into the matching StorageError."""
    # A bare grpc.RpcError (not a Call) has none of these methods.
    try:
        code = err.code()
    except AttributeError:
        code = grpc.StatusCode.UNKNOWN
    try:
        message = err.details() or ""
        trailers = err.trailing_metadata()
    except AttributeError:
        message, trailers = str(err), None

    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = {}
    blob = status_details(trailers)
    if blob is not None:
        try:
            status_message, info = decode_status_details(blob)
        except DecodeError:
            info, status_message = None, ""  # undecodable details: keep the code
        message = message or status_message
        if info is not None:
            reason = info.reason or None
            domain = info.domain or None
            metadata = dict(info.metadata)
    cls = error_class(reason, code)
    return cls(
        message or code.name,
        code=code,
        reason=reason,
        domain=domain,
        metadata=metadata,
        grpc_error=err,
    )

"""GatewayError -> gRPC status with a google.rpc.ErrorInfo (rich error model),
and a google.rpc.RetryInfo when the error says when to retry (retry_after_s)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.domain.errors import GatewayError, Reason

ERROR_DOMAIN = "storagegw"

_CODES: dict[Reason, grpc.StatusCode] = {
    Reason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_KEY: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_BUCKET: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_STREAM: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_PAGE_TOKEN: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_EXPIRY: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_UPLOAD_ID: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.UNSUPPORTED_OPTION: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.BUCKET_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.OBJECT_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.UPLOAD_EXPIRED: grpc.StatusCode.NOT_FOUND,
    Reason.UPLOAD_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.INVALID_WRITE_OFFSET: grpc.StatusCode.OUT_OF_RANGE,
    Reason.UPLOAD_BUSY: grpc.StatusCode.ABORTED,
    Reason.STREAM_IDLE_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.TOO_MANY_STREAMS: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.INVALID_CONTENT_TYPE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.PRECONDITION_FAILED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.NOT_MODIFIED: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.KEY_CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.CHECKSUM_MISMATCH: grpc.StatusCode.DATA_LOSS,
    Reason.SIZE_MISMATCH: grpc.StatusCode.DATA_LOSS,
    Reason.OBJECT_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.OBJECT_TOO_SMALL: grpc.StatusCode.OUT_OF_RANGE,
    Reason.QUOTA_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.INVALID_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    Reason.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    Reason.BACKEND_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.INTERNAL: grpc.StatusCode.INTERNAL,
}


def status_code(reason: Reason) -> grpc.StatusCode:
    return _CODES[reason]


def to_status(error: GatewayError) -> grpc.Status:
    code = _CODES[error.reason]
    info = error_details_pb2.ErrorInfo(
        reason=error.reason.value, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    details = [detail]
    retry_after = error.metadata.get("retry_after_s")
    if retry_after is not None:
        # The standard hint too, for clients that know google.rpc.RetryInfo.
        retry = any_pb2.Any()
        retry.Pack(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(retry_after)))
        )
        details.append(retry)
    message = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.message, details=details
    )
    status: grpc.Status = rpc_status.to_status(message)
    return status

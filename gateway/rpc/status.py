"""GatewayError -> gRPC status with a google.rpc.ErrorInfo (rich error model),
and a google.rpc.RetryInfo when the error says when to retry (retry_after_s);
or -> the same google.rpc.Status as a message field (a DeleteObjects key's)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.domain.errors import REASON_STATUS, GatewayError, Reason
from storagegw.v1 import status_pb2 as wire_status

ERROR_DOMAIN = "storagegw"

# From the one reason table; a code name that is not a grpc.StatusCode fails here, at import.
_CODES: dict[Reason, grpc.StatusCode] = {
    reason: grpc.StatusCode[status.grpc_code] for reason, status in REASON_STATUS.items()
}


def status_code(reason: Reason) -> grpc.StatusCode:
    return _CODES[reason]


def to_status(error: GatewayError) -> grpc.Status:
    status: grpc.Status = rpc_status.to_status(_rpc_status(error))
    return status


def key_status(error: GatewayError) -> wire_status.RpcStatus:
    """The status of one key of a batch: the google.rpc.Status a call that
    failed so would carry, in the contract's wire form of it."""
    google = _rpc_status(error)
    return wire_status.RpcStatus(code=google.code, message=google.message, details=google.details)


def _rpc_status(error: GatewayError) -> status_pb2.Status:
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
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.message, details=details
    )

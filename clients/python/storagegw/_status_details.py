"""The google.rpc.Status a gateway error carries in its trailers, decoded with
storagegw.v1.status_pb2 (its wire form), so no googleapis package is needed."""

from __future__ import annotations

from collections.abc import Iterable

from storagegw.v1 import status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_INFO_TYPE = "google.rpc.ErrorInfo"


def status_details(trailing_metadata: object) -> bytes | None:
    # Sync calls give a tuple of (key, value) namedtuples, grpc.aio a Metadata
    # of plain tuples; the grpc stubs describe neither exactly.
    if not isinstance(trailing_metadata, Iterable):
        return None
    for item in trailing_metadata:
        if isinstance(item, tuple) and len(item) == 2:
            key, value = item
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                return value
    return None


def decode_status_details(
    blob: bytes,
) -> tuple[str, status_pb2.RpcErrorInfo | None]:
    """Decode a serialized google.rpc.Status: (message, its ErrorInfo if any)."""
    status = status_pb2.RpcStatus()
    status.ParseFromString(blob)
    return status.message, error_info(status)


def error_info(status: status_pb2.RpcStatus) -> status_pb2.RpcErrorInfo | None:
    """The status's ErrorInfo, if it carries one."""
    for detail in status.details:
        if detail.type_url.endswith(_ERROR_INFO_TYPE):
            info = status_pb2.RpcErrorInfo()
            info.ParseFromString(detail.value)
            return info
    return None

"""The flows of the calls on many keys, or on a key that may be a prefix:
delete_many (DeleteObjects, 1,000 keys a call) and kind (Head with
report_prefix). See _flows.py for the flows of the other operations."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import grpc

from storagegw._effects import Call, Flow
from storagegw._status_details import error_info
from storagegw._types import DeleteResult, KeyKind, ObjectInfo
from storagegw.errors import BucketNotFound, NotFound, StorageError, error_class
from storagegw.v1 import status_pb2, storage_pb2

__all__ = ["MAX_DELETE_KEYS", "delete_many", "kind"]

# The most keys one DeleteObjects takes (more: TooManyKeys).
MAX_DELETE_KEYS = 1000

_CODES = {code.value[0]: code for code in grpc.StatusCode}


def delete_many(
    bucket: str, keys: Iterable[str], timeout: float | None
) -> Flow[list[DeleteResult]]:
    """One DeleteObjects per MAX_DELETE_KEYS keys, one after the other; the
    results in the keys' order."""
    if isinstance(keys, str | bytes):
        raise TypeError("delete_many takes an iterable of keys, not one key")
    results: list[DeleteResult] = []
    remaining = iter(keys)
    while batch := list(islice(remaining, MAX_DELETE_KEYS)):
        request = storage_pb2.DeleteObjectsRequest(bucket=bucket, keys=batch)
        response: storage_pb2.DeleteObjectsResponse = yield Call("DeleteObjects", request, timeout)
        results.extend(
            DeleteResult(
                result.key,
                result.existed,
                _key_error(result.status) if result.HasField("status") else None,
            )
            for result in response.results
        )
    return results


def _key_error(status: status_pb2.RpcStatus) -> StorageError:
    """The exception a call failing with this status would have raised."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    info = error_info(status) or status_pb2.RpcErrorInfo()
    reason = info.reason or None
    return error_class(reason, code)(
        status.message or code.name,
        code=code,
        reason=reason,
        domain=info.domain or None,
        metadata=dict(info.metadata),
    )


def kind(request: storage_pb2.HeadRequest, timeout: float | None) -> Flow[KeyKind | None]:
    """Object, prefix or nothing (a missing bucket still raises BucketNotFound)."""
    request.report_prefix = True
    try:
        response: storage_pb2.HeadResponse = yield Call("Head", request, timeout)
    except BucketNotFound:
        raise
    except NotFound:
        return None
    if response.is_prefix:
        return KeyKind(request.key, "prefix")
    return KeyKind(request.key, "object", ObjectInfo.from_proto(response.object))

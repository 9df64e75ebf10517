"""Python client for the storagegw gRPC storage gateway.

Needs only grpcio and protobuf. Install google-crc32c as well to checksum
large transfers at native speed; without it a pure-Python CRC32C is used.
"""

from storagegw._common import VERSION as __version__
from storagegw._types import ByteRange, ListPage, ObjectInfo, SignedUrl
from storagegw.aio import AsyncClient, AsyncObjectReader
from storagegw.client import Client, ObjectReader
from storagegw.errors import (
    BucketNotFound,
    Cancelled,
    ChecksumMismatch,
    DataLoss,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    InvalidKey,
    InvalidRange,
    KeyConflict,
    NotFound,
    NotModified,
    ObjectNotFound,
    ObjectTooLarge,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
    ResourceExhausted,
    SizeMismatch,
    StorageError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    from_rpc_error,
)

__all__ = [
    "AsyncClient",
    "AsyncObjectReader",
    "BucketNotFound",
    "ByteRange",
    "Cancelled",
    "ChecksumMismatch",
    "Client",
    "DataLoss",
    "DeadlineExceeded",
    "Internal",
    "InvalidArgument",
    "InvalidKey",
    "InvalidRange",
    "KeyConflict",
    "ListPage",
    "NotFound",
    "NotModified",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectTooLarge",
    "PermissionDenied",
    "PreconditionFailed",
    "QuotaExceeded",
    "ResourceExhausted",
    "SignedUrl",
    "SizeMismatch",
    "StorageError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "__version__",
    "from_rpc_error",
]

"""Python client for the storagegw gRPC storage gateway.

Needs only grpcio and protobuf. Install google-crc32c as well to checksum
large transfers at native speed; without it a pure-Python CRC32C is used.
"""

from storagegw import errors
from storagegw._checks import ScanFind, ScanReport
from storagegw._common import RETRY_SERVICE_CONFIG
from storagegw._common import VERSION as __version__
from storagegw._credentials import TlsConfig
from storagegw._retry import RetryPolicy
from storagegw._stats import BucketStats
from storagegw._types import (
    ByteRange,
    DeleteResult,
    KeyKind,
    ListPage,
    ObjectInfo,
    SignedUrl,
    UploadSession,
    UploadStatus,
)
from storagegw.aio import AsyncClient, AsyncObjectReader
from storagegw.client import Client, ObjectReader

# The exceptions and from_rpc_error, as errors.__all__ lists them.
from storagegw.errors import *  # noqa: F403

__all__ = [
    "RETRY_SERVICE_CONFIG",
    "AsyncClient",
    "AsyncObjectReader",
    "BucketStats",
    "ByteRange",
    "Client",
    "DeleteResult",
    "KeyKind",
    "ListPage",
    "ObjectInfo",
    "ObjectReader",
    "RetryPolicy",
    "ScanFind",
    "ScanReport",
    "SignedUrl",
    "TlsConfig",
    "UploadSession",
    "UploadStatus",
    "__version__",
]
__all__ += errors.__all__

"""Plain Python values returned by the clients, built from the proto messages."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from storagegw.errors import StorageError
from storagegw.v1 import storage_pb2

__all__ = [
    "ByteRange",
    "DeleteResult",
    "KeyKind",
    "ListPage",
    "ObjectInfo",
    "Progress",
    "SignedUrl",
    "UploadSession",
    "UploadStatus",
]

# A transfer's progress callback: called with the bytes sent (or written) so far.
Progress = Callable[[int], None]


# A SignUrlResponse's route as sign_url() takes it.
_ROUTE_NAMES = {
    storage_pb2.URL_ROUTE_CDN: "cdn",
    storage_pb2.URL_ROUTE_GATEWAY: "gateway",
    storage_pb2.URL_ROUTE_STORE: "store",
}


def _datetime_or_none(has_value: bool, timestamp: Timestamp) -> datetime | None:
    return timestamp.ToDatetime(tzinfo=UTC) if has_value else None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object's metadata."""

    bucket: str
    key: str
    size: int
    content_type: str
    # Excluded from hashing so ObjectInfo stays hashable despite the dict.
    metadata: dict[str, str] = field(default_factory=dict, hash=False)
    etag: str = ""
    generation: int = 0
    crc32c: int | None = None
    sha256: bytes | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    storage_class: str = ""

    @classmethod
    def from_proto(cls, message: storage_pb2.ObjectInfo) -> ObjectInfo:
        return cls(
            bucket=message.bucket,
            key=message.key,
            size=message.size,
            content_type=message.content_type,
            metadata=dict(message.metadata),
            etag=message.etag,
            generation=message.generation,
            crc32c=message.crc32c if message.HasField("crc32c") else None,
            sha256=message.sha256 or None,
            create_time=_datetime_or_none(message.HasField("create_time"), message.create_time),
            update_time=_datetime_or_none(message.HasField("update_time"), message.update_time),
            storage_class=message.storage_class,
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: checksums in hex, times in ISO 8601."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
            "etag": self.etag,
            "generation": self.generation,
            "crc32c": None if self.crc32c is None else f"{self.crc32c:08x}",
            "sha256": None if self.sha256 is None else self.sha256.hex(),
            "create_time": None if self.create_time is None else self.create_time.isoformat(),
            "update_time": None if self.update_time is None else self.update_time.isoformat(),
            "storage_class": self.storage_class,
        }


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The bytes a read serves: [start, end) of an object of complete_length."""

    start: int
    end: int
    complete_length: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def is_whole_object(self) -> bool:
        return self.start == 0 and self.end == self.complete_length

    @classmethod
    def from_proto(cls, message: storage_pb2.ContentRange) -> ByteRange:
        return cls(message.start, message.end, message.complete_length)


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: objects, rolled-up prefixes and the next token."""

    objects: tuple[ObjectInfo, ...]
    prefixes: tuple[str, ...]
    next_page_token: str

    @classmethod
    def from_proto(cls, message: storage_pb2.ListResponse) -> ListPage:
        return cls(
            objects=tuple(ObjectInfo.from_proto(o) for o in message.objects),
            prefixes=tuple(message.common_prefixes),
            next_page_token=message.next_page_token,
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """One key's outcome in delete_many: `existed` says whether there was an
    object, now deleted; `error`, when set, why this key was not deleted (an
    invalid key, AccessDenied...; `existed` is then False, telling nothing)."""

    key: str
    existed: bool
    error: StorageError | None = None

    @property
    def ok(self) -> bool:
        """Whether the key is gone (deleted now, or there was nothing)."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class KeyKind:
    """What a key names (kind()): "object", with its `object`, or "prefix":
    no object, but objects under key + "/" (a directory, to a filesystem)."""

    key: str
    kind: Literal["object", "prefix"]
    object: ObjectInfo | None = None


@dataclass(frozen=True, slots=True)
class SignedUrl:
    """A URL a plain HTTP client can use until expire_time.

    Send `headers` with the request exactly as given; for POST, send
    `form_fields` as multipart/form-data fields, then the object's bytes as
    the last field, named "file".
    """

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    expire_time: datetime | None = None
    form_fields: dict[str, str] = field(default_factory=dict, hash=False)
    # A direct upload to a bucket that checks its uploads: pass it to
    # finalize_upload once the bytes are uploaded ("" otherwise).
    pending_upload: str = ""
    # Who serves it: "cdn", "gateway" or "store" ("" from a gateway that
    # does not say).
    route: str = ""

    @classmethod
    def from_proto(cls, message: storage_pb2.SignUrlResponse) -> SignedUrl:
        return cls(
            url=message.url,
            method=message.method,
            headers=dict(message.headers),
            expire_time=_datetime_or_none(message.HasField("expire_time"), message.expire_time),
            form_fields=dict(message.form_fields),
            pending_upload=message.pending_upload,
            route=_ROUTE_NAMES.get(message.route, ""),
        )


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A resumable upload started by start_upload(): continue it with
    resume_upload(upload_id, ...) from any client, until expire_time."""

    upload_id: str
    bucket: str
    key: str
    expire_time: datetime | None = None

    @classmethod
    def from_proto(
        cls, message: storage_pb2.StartUploadResponse, bucket: str, key: str
    ) -> UploadSession:
        return cls(
            upload_id=message.upload_id,
            bucket=bucket,
            key=key,
            expire_time=_datetime_or_none(message.HasField("expire_time"), message.expire_time),
        )


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """Where a resumable upload stands (QueryUpload).

    persisted_size: bytes the gateway holds durably; continue from there.
    complete: whether the object was committed; `object` is then set.
    """

    upload_id: str
    persisted_size: int
    complete: bool
    object: ObjectInfo | None = None
    expire_time: datetime | None = None

    @classmethod
    def from_proto(cls, message: storage_pb2.QueryUploadResponse, upload_id: str) -> UploadStatus:
        return cls(
            upload_id=upload_id,
            persisted_size=message.persisted_size,
            complete=message.complete,
            object=ObjectInfo.from_proto(message.object) if message.HasField("object") else None,
            expire_time=_datetime_or_none(message.HasField("expire_time"), message.expire_time),
        )

    def to_dict(self) -> dict[str, builtins.object]:
        return {
            "upload_id": self.upload_id,
            "persisted_size": self.persisted_size,
            "complete": self.complete,
            "expire_time": None if self.expire_time is None else self.expire_time.isoformat(),
            "object": None if self.object is None else self.object.to_dict(),
        }

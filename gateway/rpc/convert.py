"""Conversions between protobuf messages and driver values."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.domain.errors import invalid_argument
from gateway.domain.objects import DEFAULT_CONTENT_TYPE, Conditions, ObjectMeta
from storagegw.v1 import storage_pb2 as pb


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def object_info(bucket: str, meta: ObjectMeta, *, with_metadata: bool = True) -> pb.ObjectInfo:
    info = pb.ObjectInfo(
        bucket=bucket,
        key=meta.key,
        size=meta.size,
        content_type=meta.content_type or DEFAULT_CONTENT_TYPE,
        etag=meta.etag,
        generation=meta.generation,
        sha256=meta.sha256 or b"",
        create_time=_timestamp(meta.create_time_ns),
        update_time=_timestamp(meta.update_time_ns),
        storage_class=meta.storage_class,
    )
    if with_metadata:
        info.metadata.update(meta.metadata)
    if meta.crc32c is not None:
        info.crc32c = meta.crc32c
    return info


def conditions(message: pb.Preconditions) -> Conditions:
    return Conditions(
        if_match=message.if_match,
        if_none_match=message.if_none_match,
        if_generation_match=(
            message.if_generation_match if message.HasField("if_generation_match") else None
        ),
        if_generation_not_match=(
            message.if_generation_not_match if message.HasField("if_generation_not_match") else None
        ),
    )


def sha256_field(value: bytes, field: str) -> bytes | None:
    """An optional SHA-256 field: empty means not given, else exactly 32 bytes."""
    if not value:
        return None
    if len(value) != 32:
        raise invalid_argument(f"{field} must be 32 bytes (SHA-256), got {len(value)}")
    return value

"""The record a driver keeps beside a resumable upload, and its JSON form.

Every driver stores the same record (a local file, an S3 or GCS object, a
dict entry): the key and write options it was started with, the gateway's own
state as of the persisted size (opaque here), the driver's own fields (an S3
part size, a GCS session...) and, once finished, the committed object, so
that asking again after commit answers with the object.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.domain.errors import GatewayError, Reason
from gateway.domain.keys import RESERVED_SEGMENT
from gateway.domain.objects import Conditions, ObjectMeta, UploadStatus, WriteOptions

VERSION = 1
# Where S3 and GCS keep upload records (inside the backend's own prefix):
# keys.py refuses keys under RESERVED_SEGMENT, and listings hide it.
RECORDS_PREFIX = f"{RESERVED_SEGMENT}/uploads/"
RECORD_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class UploadRecord:
    key: str
    options: WriteOptions
    state: bytes
    persisted_size: int = 0
    created_unix: float = field(default_factory=time.time)
    driver: Mapping[str, Any] = field(default_factory=dict)
    complete: ObjectMeta | None = None

    def status(self) -> UploadStatus:
        return UploadStatus(self.persisted_size, self.state, self.complete)

    def advanced(self, size: int, state: bytes) -> UploadRecord:
        return replace(self, persisted_size=size, state=state)


def _options_doc(options: WriteOptions) -> dict[str, Any]:
    c = options.conditions
    return {
        "content_type": options.content_type,
        "metadata": dict(options.metadata),
        "conditions": {
            "if_match": c.if_match,
            "if_none_match": c.if_none_match,
            "if_generation_match": c.if_generation_match,
            "if_generation_not_match": c.if_generation_not_match,
        },
        "size_hint": options.size_hint,
        "storage_class": options.storage_class,
        "server_side_encryption": options.server_side_encryption,
        "kms_key_id": options.kms_key_id,
    }


def _options(doc: dict[str, Any]) -> WriteOptions:
    return WriteOptions(
        content_type=doc["content_type"],
        metadata=dict(doc["metadata"]),
        conditions=Conditions(**doc["conditions"]),
        size_hint=doc["size_hint"],
        storage_class=doc["storage_class"],
        server_side_encryption=doc["server_side_encryption"],
        kms_key_id=doc["kms_key_id"],
    )


def meta_doc(meta: ObjectMeta) -> dict[str, Any]:
    return {
        "key": meta.key,
        "size": meta.size,
        "etag": meta.etag,
        "generation": meta.generation,
        "create_time_ns": meta.create_time_ns,
        "update_time_ns": meta.update_time_ns,
        "content_type": meta.content_type,
        "metadata": dict(meta.metadata),
        "crc32c": meta.crc32c,
        "sha256": None if meta.sha256 is None else meta.sha256.hex(),
        "storage_class": meta.storage_class,
    }


def meta_from(doc: dict[str, Any]) -> ObjectMeta:
    sha = doc["sha256"]
    return ObjectMeta(**{**doc, "sha256": None if sha is None else bytes.fromhex(sha)})


def encode(record: UploadRecord) -> bytes:
    doc = {
        "v": VERSION,
        "key": record.key,
        "options": _options_doc(record.options),
        "state": base64.b64encode(record.state).decode("ascii"),
        "persisted_size": record.persisted_size,
        "created_unix": record.created_unix,
        "driver": dict(record.driver),
        "complete": None if record.complete is None else meta_doc(record.complete),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(data: bytes, where: str) -> UploadRecord:
    """The record in data; INTERNAL naming where when it is not one."""
    try:
        doc = json.loads(data)
        if doc.get("v") != VERSION:
            raise ValueError(f"version {doc.get('v')!r}")
        complete = doc["complete"]
        return UploadRecord(
            key=doc["key"],
            options=_options(doc["options"]),
            state=base64.b64decode(doc["state"]),
            persisted_size=int(doc["persisted_size"]),
            created_unix=float(doc["created_unix"]),
            driver=dict(doc["driver"]),
            complete=None if complete is None else meta_from(complete),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise GatewayError(
            Reason.INTERNAL, f"upload record {where} is not readable: {error}"
        ) from None

"""Resumable uploads into a dedup bucket: the inner driver's upload is of a
temp object (its handle, and the upload's conditions, travel in this
layer's handle, which the gateway carries authenticated in the upload id);
its commit settles the temp object as a Put's (backend.settle)."""

from __future__ import annotations

import dataclasses
import json

from gateway.backends.base import (
    Backend,
    ForwardingUploadWriter,
    ResumableBackend,
    Resumed,
    UploadWriter,
)
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.objects import Checksums, Conditions, ObjectMeta, UploadStatus, WriteOptions
from gateway.layers.dedup.names import presented, refuse_reserved, temp_key
from gateway.layers.dedup.references import pointer_of, settle


@dataclasses.dataclass(frozen=True, slots=True)
class _Handle:
    temp: str
    inner: str
    conditions: Conditions

    def encoded(self) -> str:
        c = self.conditions
        fields = [c.if_match, c.if_none_match, c.if_generation_match, c.if_generation_not_match]
        return json.dumps({"t": self.temp, "h": self.inner, "c": fields})

    @classmethod
    def decoded(cls, text: str) -> _Handle:
        try:
            payload = json.loads(text)
            conditions = Conditions(*payload["c"])
            return cls(str(payload["t"]), str(payload["h"]), conditions)
        except (ValueError, KeyError, TypeError):
            raise GatewayError(Reason.UPLOAD_NOT_FOUND, "no such upload") from None


class DedupUploads:
    """capabilities.uploads of a DedupBackend."""

    def __init__(self, backend: Backend, grace_s: float, inner: ResumableBackend) -> None:
        self._backend = backend
        self._grace_s = grace_s
        self._inner = inner

    async def start_upload(self, key: str, options: WriteOptions, state: bytes) -> str:
        refuse_reserved(key)
        temp = temp_key()
        staged = dataclasses.replace(options, conditions=Conditions())
        handle = await self._inner.start_upload(temp, staged, state)
        return _Handle(temp, handle, options.conditions).encoded()

    async def query_upload(self, key: str, handle: str) -> UploadStatus:
        ref = _Handle.decoded(handle)
        status = await self._inner.query_upload(ref.temp, ref.inner)
        return await self._finished(key, status)

    async def resume_upload(self, key: str, handle: str) -> Resumed:
        ref = _Handle.decoded(handle)
        status, writer = await self._inner.resume_upload(ref.temp, ref.inner)
        if writer is None:
            return await self._finished(key, status), None
        return status, _DedupUploadWriter(self._backend, self._grace_s, key, ref, writer)

    async def abort_upload(self, key: str, handle: str) -> bool:
        ref = _Handle.decoded(handle)
        return await self._inner.abort_upload(ref.temp, ref.inner)

    async def _finished(self, key: str, status: UploadStatus) -> UploadStatus:
        """A complete upload answers with the object at its key."""
        if status.complete is None:
            return status
        current = presented(await self._backend.head(key))
        return dataclasses.replace(status, complete=current)


class _DedupUploadWriter(ForwardingUploadWriter):
    def __init__(
        self, backend: Backend, grace_s: float, key: str, ref: _Handle, writer: UploadWriter
    ) -> None:
        super().__init__(writer)
        self._backend = backend
        self._grace_s = grace_s
        self._key = key
        self._ref = ref

    async def commit(self, checksums: Checksums) -> ObjectMeta:
        pointer = pointer_of(self._key, checksums)
        stored = await self._writer.commit(checksums)
        options = WriteOptions(
            content_type=stored.content_type,
            metadata=dict(stored.metadata),
            conditions=self._ref.conditions,
            storage_class=stored.storage_class,
        )
        temp = self._ref.temp
        return await settle(self._backend, self._grace_s, self._key, pointer, options, temp)

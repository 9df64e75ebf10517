"""What Client and AsyncClient share: their options, the default bucket, and
the helpers the operations build their flows with (_operations.py), with the
flows of put_file and resume_upload, which each client names explicitly.

The parameters of those two are in the order of the public methods' own,
which document them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from functools import partial

from storagegw import _common, _flows
from storagegw._effects import Blocking, Flow, PutSource, SpecFor
from storagegw._resumable import open_upload_source, wants_resumable
from storagegw._retry import RetryPolicy
from storagegw._types import ListPage, ObjectInfo, Progress, UploadSession
from storagegw.v1 import storage_pb2

__all__ = ["ClientBase"]

_conditions = _common.preconditions


class ClientBase:
    """The options common to both clients (see Client for their meaning)."""

    def __init__(
        self,
        target: str,
        bucket: str,
        timeout: float | timedelta | None,
        chunk_size: int,
        retry: RetryPolicy | None,
        resumable_threshold: int,
    ) -> None:
        self.target = target
        self.retry = retry if retry is not None else RetryPolicy()
        self.resumable_threshold = resumable_threshold
        self.bucket = bucket
        self.timeout = _common.seconds(timeout)
        self.chunk_size = _common.check_chunk_size(chunk_size)

    def _bucket(self, bucket: str | None) -> str:
        return self.bucket if bucket is None else bucket

    # ------------------------------------------------------------ uploads

    def _put_flow(
        self,
        key: str,
        source: object,
        bucket: str | None,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        size: int | None,
        progress: Progress | None,
        if_none_match: str | None,
        if_match: str | None,
        if_generation_match: int | None,
        resumable: bool | None,
        retry: RetryPolicy | None,
        keep_upload: bool,
        on_upload_start: Callable[[UploadSession], None] | None,
    ) -> Flow[ObjectInfo]:
        """put_file: one plain Put, or a resumable upload (see Client.put_file)."""
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        spec = self._spec_for(key, bucket, metadata, conditions)
        threshold = self.resumable_threshold
        if not (yield Blocking(partial(wants_resumable, resumable, source, size, threshold))):
            info: ObjectInfo = yield PutSource(source, content_type, size, spec, progress)
            return info
        opened = partial(open_upload_source, source, self.chunk_size, content_type, size)
        upload_source, file, content_type, size = yield Blocking(opened)
        try:
            return (
                yield from _flows.put_resumable(
                    spec(content_type, size),
                    upload_source,
                    retry or self.retry,
                    progress,
                    keep_upload,
                    on_upload_start,
                    self.timeout,
                )
            )
        finally:
            if file is not None:
                file.close()

    def _resume_upload_flow(
        self, upload_id: str, source: object, progress: Progress | None, retry: RetryPolicy | None
    ) -> Flow[ObjectInfo]:
        opened = partial(open_upload_source, source, self.chunk_size, None, None)
        upload_source, file, _, _ = yield Blocking(opened)
        try:
            policy = retry or self.retry
            return (
                yield from _flows.resume_upload(
                    upload_id, upload_source, policy, progress, self.timeout
                )
            )
        finally:
            if file is not None:
                file.close()

    def _spec_for(
        self,
        key: str,
        bucket: str | None,
        metadata: Mapping[str, str] | None,
        conditions: storage_pb2.Preconditions | None,
    ) -> SpecFor:
        """The PutSpec, once the source's content type and size are known."""
        bucket_name = self._bucket(bucket)

        def spec(content_type: str | None, size: int | None) -> storage_pb2.PutSpec:
            return _common.put_spec(
                bucket_name,
                key,
                content_type=content_type,
                metadata=metadata,
                size=size,
                conditions=conditions,
            )

        return spec

    # ------------------------------------------------------------ downloads

    def _get_request(
        self,
        key: str,
        bucket: str | None,
        offset: int,
        length: int | None,
        if_match: str | None,
        if_none_match: str | None,
        if_generation_match: int | None,
    ) -> storage_pb2.GetRequest:
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        return _common.get_request(
            self._bucket(bucket), key, offset=offset, length=length, conditions=conditions
        )

    # ------------------------------------------------------------ metadata

    def _list_flows(
        self, prefix: str, bucket: str | None, delimiter: str, start_after: str, page_size: int
    ) -> Iterator[Flow[ListPage]]:
        request = _common.list_request(
            self._bucket(bucket),
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            page_size=page_size,
        )
        return _flows.list_pages(request, self.timeout)

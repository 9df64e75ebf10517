"""What Client and AsyncClient share: their options, the default bucket, and
each public method's flow, built from that method's arguments.

A public method of either client is one line: build the flow here, run it
with the client's transport. The parameters below are in the order of the
public methods' own, which document them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from functools import partial

from storagegw import _common, _flows
from storagegw._effects import Blocking, Flow, PutSource, SpecFor
from storagegw._resumable import open_upload_source, wants_resumable
from storagegw._retry import RetryPolicy
from storagegw._types import ListPage, ObjectInfo, Progress, SignedUrl, UploadSession, UploadStatus
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

    def _put_bytes_flow(
        self,
        key: str,
        data: bytes | bytearray | memoryview,
        bucket: str | None,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        if_none_match: str | None,
        if_match: str | None,
        if_generation_match: int | None,
    ) -> Flow[ObjectInfo]:
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        spec = self._spec_for(key, bucket, metadata, conditions)
        info: ObjectInfo = yield PutSource([bytes(data)], content_type, len(data), spec, None)
        return info

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

    def _start_upload_flow(
        self,
        key: str,
        bucket: str | None,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        size: int | None,
        if_none_match: str | None,
        if_match: str | None,
        if_generation_match: int | None,
    ) -> Flow[UploadSession]:
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        spec = self._spec_for(key, bucket, metadata, conditions)(content_type, size)
        return _flows.start_upload(spec, self.timeout)

    def _query_upload_flow(self, upload_id: str) -> Flow[UploadStatus]:
        return _flows.query_upload(upload_id, self.timeout)

    def _abort_upload_flow(self, upload_id: str) -> Flow[bool]:
        return _flows.abort_upload(upload_id, self.timeout)

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

    def _download_flow(
        self,
        key: str,
        dest_path: str | os.PathLike[str],
        bucket: str | None,
        progress: Progress | None,
        if_match: str | None,
        if_generation_match: int | None,
        retry: RetryPolicy | None,
    ) -> Flow[ObjectInfo]:
        bucket_name = self._bucket(bucket)

        def request(
            offset: int, conditions: storage_pb2.Preconditions | None
        ) -> storage_pb2.GetRequest:
            return _common.get_request(bucket_name, key, offset=offset, conditions=conditions)

        first = _conditions(if_match=if_match, if_generation_match=if_generation_match)
        return _flows.download(request, key, dest_path, first, retry or self.retry, progress)

    # ------------------------------------------------------------ metadata

    def _head_flow(
        self,
        key: str,
        bucket: str | None,
        if_match: str | None,
        if_none_match: str | None,
        if_generation_match: int | None,
    ) -> Flow[ObjectInfo]:
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )
        request = _common.head_request(self._bucket(bucket), key, conditions)
        return _flows.head(request, self.timeout)

    def _exists_flow(self, key: str, bucket: str | None) -> Flow[bool]:
        return _flows.exists(_common.head_request(self._bucket(bucket), key), self.timeout)

    def _delete_flow(
        self, key: str, bucket: str | None, if_match: str | None, if_generation_match: int | None
    ) -> Flow[bool]:
        conditions = _conditions(if_match=if_match, if_generation_match=if_generation_match)
        request = _common.delete_request(self._bucket(bucket), key, conditions)
        return _flows.delete(request, self.timeout)

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

    def _sign_url_flow(
        self,
        key: str,
        bucket: str | None,
        method: str,
        expires_in: float | timedelta | None,
        download: bool,
        filename: str | None,
        content_type: str | None,
        max_size: int | None,
        min_size: int | None,
    ) -> Flow[SignedUrl]:
        request = _common.sign_url_request(
            self._bucket(bucket),
            key,
            method=method,
            expires_in=expires_in,
            download=download,
            filename=filename,
            content_type=content_type,
            max_size=max_size,
            min_size=min_size,
        )
        return _flows.sign_url(request, self.timeout)

    def _copy_flow(
        self,
        src_key: str,
        dst_key: str,
        src_bucket: str | None,
        dst_bucket: str | None,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        if_source_match: str | None,
        if_source_generation_match: int | None,
        if_none_match: str | None,
        if_match: str | None,
        if_generation_match: int | None,
    ) -> Flow[ObjectInfo]:
        request = _common.copy_request(
            self._bucket(src_bucket),
            src_key,
            self._bucket(dst_bucket),
            dst_key,
            metadata=metadata,
            content_type=content_type,
            source_conditions=_conditions(
                if_match=if_source_match, if_generation_match=if_source_generation_match
            ),
            destination_conditions=_conditions(
                if_match=if_match,
                if_none_match=if_none_match,
                if_generation_match=if_generation_match,
            ),
        )
        return _flows.copy(request, self.timeout)

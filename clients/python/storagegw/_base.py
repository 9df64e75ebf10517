"""What Client and AsyncClient share: their options, the default bucket, and
the helpers the operations build their flows with (_operations.py,
_transfers.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TypeVar

import grpc

from storagegw import _common, _flows
from storagegw._credentials import TlsConfig, channel_credentials
from storagegw._effects import Flow, SpecFor
from storagegw._retry import RetryPolicy
from storagegw._types import ListPage
from storagegw.v1 import storage_pb2

__all__ = ["ClientBase"]

_conditions = _common.preconditions
_Channel = TypeVar("_Channel")


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
        verify_sha256: bool = False,
    ) -> None:
        self.target = target
        self.verify_sha256 = verify_sha256
        self.retry = retry if retry is not None else RetryPolicy()
        self.resumable_threshold = resumable_threshold
        self.bucket = bucket
        self.timeout = _common.seconds(timeout)
        self.chunk_size = _common.check_chunk_size(chunk_size)

    def _channel_plan(
        self,
        channel: _Channel | None,
        credentials: grpc.ChannelCredentials | None,
        tls: TlsConfig | None,
        load_balancing: str | None,
        sends_token: bool,
    ) -> _common.ChannelPlan[_Channel]:
        """The client's channel: `channel`, or one opened with these options;
        gRPC's own retry of refused calls unless the client never retries."""
        credentials = channel_credentials(self.target, tls, credentials, channel, sends_token)
        retry_refused = self.retry.max_attempts > 1
        return _common.ChannelPlan(self.target, channel, credentials, load_balancing, retry_refused)

    def _bucket(self, bucket: str | None) -> str:
        return self.bucket if bucket is None else bucket

    def _verifies_sha256(self, verify_sha256: bool | None) -> bool:
        """A call's verify_sha256: its own, else the client's."""
        return self.verify_sha256 if verify_sha256 is None else verify_sha256

    # ------------------------------------------------------------ uploads

    def _spec_for(
        self,
        key: str,
        bucket: str | None,
        metadata: Mapping[str, str] | None,
        if_match: str | None,
        if_none_match: str | None,
        if_generation_match: int | None,
        verify_sha256: bool | None,
    ) -> SpecFor:
        """The PutSpec, once the source's content type and size are known.
        verify_sha256 (None: the client's setting): the client sends the
        object's SHA-256 to be checked, so it asks the gateway to compute
        one whatever the bucket's choice."""
        bucket_name = self._bucket(bucket)
        compute_sha256 = self._verifies_sha256(verify_sha256)
        conditions = _conditions(
            if_match=if_match, if_none_match=if_none_match, if_generation_match=if_generation_match
        )

        def spec(content_type: str | None, size: int | None) -> storage_pb2.PutSpec:
            return _common.put_spec(
                bucket_name,
                key,
                content_type=content_type,
                metadata=metadata,
                size=size,
                conditions=conditions,
                compute_sha256=compute_sha256,
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

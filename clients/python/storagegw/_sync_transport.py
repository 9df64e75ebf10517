"""The sync Client's I/O: it performs a flow's effects by blocking.

All that decides what to send, verify or retry is in the flows (_flows.py);
here are only the blocking calls: the gRPC stub, the Put stream fed from
gRPC's sending thread, file work inline and time.sleep.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar, cast

import grpc

from storagegw import _effects as effects
from storagegw import _files
from storagegw._common import ChannelPlan, converted_rpc_errors
from storagegw._credentials import CallAuth, Metadata
from storagegw._readers import ObjectReader
from storagegw._streams import PutStream
from storagegw._types import ObjectInfo, Progress, UploadStatus
from storagegw._wire import PutMessage, get_method, put_method
from storagegw.errors import Cancelled
from storagegw.v1 import storage_pb2, storage_pb2_grpc

__all__ = ["SyncTransport"]

_Result = TypeVar("_Result")


class SyncTransport:
    """Runs flows over a grpc.Channel, blocking the calling thread."""

    def __init__(
        self,
        plan: ChannelPlan[grpc.Channel],
        chunk_size: int,
        auth: CallAuth | None = None,
    ) -> None:
        channel, self._owns_channel = plan.open(grpc.insecure_channel, grpc.secure_channel)
        self._channel = channel
        self._stub = storage_pb2_grpc.StorageServiceStub(channel)
        self._put_method: grpc.StreamUnaryMultiCallable[PutMessage, storage_pb2.PutResponse] = (
            put_method(channel)
        )
        self._get_method: grpc.UnaryStreamMultiCallable[storage_pb2.GetRequest, bytes] = get_method(
            channel
        )
        self._chunk_size = chunk_size
        self._auth = auth if auth is not None else CallAuth(None, None)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def run(self, flow: effects.Flow[_Result]) -> _Result:
        """Drive `flow` to its end: perform each effect, send back its result
        or throw its error in (the flow may handle it, and yield clean-up)."""
        try:
            effect = next(flow)
            while True:
                try:
                    result = self._perform(effect)
                except BaseException as error:
                    effect = flow.throw(error)
                else:
                    effect = flow.send(result)
        except StopIteration as end:
            return cast(_Result, end.value)

    def open_reader(self, read: effects.OpenRead) -> ObjectReader:
        call = self._get_method(read.request, metadata=self._auth.metadata())
        return ObjectReader(call, read.key, read.digest, sha256=read.sha256)

    def _perform(self, effect: effects.Effect) -> object:
        match effect:
            case effects.Call():
                return self._call(effect)
            case effects.BestEffort(call=call):
                with contextlib.suppress(Exception):
                    self._call(call)
                return None
            case effects.Sleep(seconds=seconds):
                time.sleep(seconds)
                return None
            case effects.Blocking(work=work):
                return work()
            case effects.SendPut(stream=stream, blocks=blocks, progress=progress):
                return self._put(stream, blocks, progress)
            case effects.PutSource():
                return self._put_source(effect)
            case effects.OpenRead():
                reader = self.open_reader(effect)
                return effects.OpenedRead(reader, reader.views())
            case effects.ReadChunk(chunks=chunks):
                assert isinstance(chunks, Iterator)
                return next(chunks, None)
            case effects.ReadChunkInto(opened=opened, write=write):
                assert isinstance(opened.chunks, Iterator)
                chunk = next(opened.chunks, None)
                return None if chunk is None else (len(chunk), write(chunk))
            case effects.Concurrently(flows=flows, stop=stop):
                return self._concurrently(flows, stop)
        raise TypeError(f"not an effect of the sync client: {effect!r}")

    def _concurrently(
        self, flows: tuple[effects.Flow[object], ...], stop: Callable[[], None]
    ) -> list[object]:
        """Each flow in a thread of its own (the Gets of a parallel download:
        gRPC and the file writes release the GIL)."""
        with ThreadPoolExecutor(len(flows), thread_name_prefix="storagegw-range") as pool:
            futures = [pool.submit(self.run, flow) for flow in flows]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                stop()  # interrupted: the pool's exit waits for the flows to end
                raise
            failed = [future for future in futures if future in done and future.exception()]
            if failed:
                stop()
                wait(futures)
                raise cast(BaseException, failed[0].exception())
            return [future.result() for future in futures]

    def _call(self, call: effects.Call) -> object:
        def send(metadata: Metadata | None) -> object:
            with converted_rpc_errors():
                method = getattr(self._stub, call.method)
                return method(call.request, timeout=call.timeout, metadata=metadata)

        return self._auth.call(send)

    def _put_source(self, effect: effects.PutSource) -> ObjectInfo | UploadStatus:
        with _files.open_source(
            effect.source, self._chunk_size, effect.content_type, effect.size
        ) as opened:
            spec = effect.spec(opened.content_type, opened.size)
            return self._put(PutStream(spec, self._chunk_size), opened.blocks, effect.progress)

    def _put(
        self, stream: effects.UploadStream, blocks: Iterable[bytes], progress: Progress | None
    ) -> ObjectInfo | UploadStatus:
        # gRPC reads the request iterator on its own thread and only logs an
        # exception raised there; the source's error is kept to re-raise here,
        # and the call is cancelled: the gateway then discards what it has
        # received at once (finish_write, which commits, is never sent).
        source_errors: list[Exception] = []
        call_started = threading.Event()

        def requests() -> Iterator[PutMessage]:
            first = stream.start()
            if first is not None:  # None: the spec goes with the data
                yield first
            try:
                for block in blocks:
                    for request in stream.feed(block):
                        yield request
                        if progress is not None:
                            progress(stream.size)
                final = stream.finish()
            except Exception as exc:
                source_errors.append(exc)
                call_started.wait()  # `call` is assigned once this is set
                call.cancel()
                return
            yield final
            if progress is not None:
                progress(stream.size)

        call: grpc.Future[storage_pb2.PutResponse] = self._put_method.future(
            requests(), metadata=self._auth.metadata()
        )
        call_started.set()
        try:
            with converted_rpc_errors():
                response = call.result()
        except BaseException as err:
            call.cancel()
            if source_errors:
                raise source_errors[0] from None
            if isinstance(err, grpc.FutureCancelledError):
                raise Cancelled("the upload was cancelled") from err
            raise
        return stream.object_info(response)

"""PartStream: one part of a resumable upload from the caller's bytes, the
upload left open for the next part (or finished by the last); its flow,
write_upload, is in _part_writes.py.

put_file and resume_upload send a whole seekable source; a writer that makes
an object a piece at a time (the fsspec file: a block each time one fills)
has only the piece. It sends each as a Put continuation that ends without
finish_write, so the gateway persists it (as far as its backend's unit) and
answers with the persisted size, and the last one with finish_write.
"""

from __future__ import annotations

from storagegw._crc32c import crc32c
from storagegw._types import ObjectInfo, UploadStatus
from storagegw._wire import PutMessage, encode_put_chunk
from storagegw.errors import Internal
from storagegw.v1 import storage_pb2

__all__ = ["Continuation", "PartStream"]


class Continuation:
    """A Put stream that continues upload `upload_id` from byte `offset`: the
    part streams of write_upload (PartStream) and of put_file and
    resume_upload (_resumable.SegmentStream). Its first message names the
    upload and the offset; `position` is where the next byte goes."""

    def __init__(self, upload_id: str, offset: int) -> None:
        self.upload_id = upload_id
        self.offset = offset
        self.position = offset

    @property
    def size(self) -> int:
        return self.position

    def start(self) -> storage_pb2.PutRequest | None:
        return storage_pb2.PutRequest(upload_id=self.upload_id, write_offset=self.offset)


class PartStream(Continuation):
    """One Put stream sending bytes to an upload from `offset`, finishing it
    or not. Has PutStream's interface (start, feed, finish, size,
    object_info), so the clients' Put plumbing sends it unchanged; its
    answer is the upload's UploadStatus."""

    def __init__(self, upload_id: str, offset: int, finishing: bool) -> None:
        super().__init__(upload_id, offset)
        self.finishing = finishing
        # Each block is held until the next one or the end, so that the
        # upload's name goes with the first block and a part of one block is
        # one message (sent as a unary call: see _aio_transport._put).
        self._held: tuple[int, bytes] | None = None
        self._named = False

    def start(self) -> storage_pb2.PutRequest | None:
        return None  # the upload is named on the first message with data

    def feed(self, block: bytes) -> list[PutMessage]:
        """At most one message per block of at most the chunk size (write_upload's)."""
        held, self._held = self._held, (self.position, block)
        self.position += len(block)
        return [] if held is None else [self._message(*held)]

    def finish(self) -> storage_pb2.PutRequest:
        # Without finish_write the stream ends with the upload persisted, not committed.
        offset, block = self._held if self._held is not None else (self.position, b"")
        self._held = None
        last = self._request(offset, block)
        last.finish_write = self.finishing
        return last

    def _message(self, offset: int, block: bytes) -> PutMessage:
        """A data message; encoded directly once the upload is named."""
        if self._named:
            return encode_put_chunk(offset, block, crc32c(block))
        return self._request(offset, block)

    def _request(self, offset: int, block: bytes) -> storage_pb2.PutRequest:
        """A data message as a PutRequest, naming the upload if none before did."""
        message = storage_pb2.PutRequest(write_offset=offset)
        if not self._named:
            message.upload_id = self.upload_id
            self._named = True
        if block:
            message.chunk.content = block
            message.chunk.crc32c = crc32c(block)
        return message

    def object_info(self, response: storage_pb2.PutResponse) -> UploadStatus:
        """The upload's status after this stream: persisted, or committed."""
        if not self.finishing:
            return UploadStatus(self.upload_id, response.persisted_size, complete=False)
        return _committed(self.upload_id, response, self.position)


def _committed(upload_id: str, response: storage_pb2.PutResponse, size: int) -> UploadStatus:
    if not response.HasField("object"):
        raise Internal(
            f"the gateway did not commit upload {upload_id} "
            f"({response.persisted_size} bytes persisted)"
        )
    info = ObjectInfo.from_proto(response.object)
    if info.size != size:
        raise Internal(f"upload {upload_id} committed {info.size} bytes, not the {size} sent")
    return UploadStatus(upload_id, info.size, complete=True, object=info)

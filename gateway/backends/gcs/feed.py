"""The chunk feed a GCS resumable upload session reads from: the writer
(and a resumed upload) hands it one chunk at a time, so memory holds only
the chunk being sent."""

from __future__ import annotations


class ChunkFeed:
    """The file-like object a ResumableUpload reads: it holds only the chunk
    being sent. tell() counts from the start of the object, and seek() may go
    back within the chunk (the library does so to resend after a failure)."""

    def __init__(self) -> None:
        self._start = 0  # object offset of self._data[0]
        self._position = 0
        self._data = b""

    def feed(self, data: bytes) -> None:
        self._start = self._position
        self._data = data

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        offset = self._position - self._start
        end = len(self._data) if size < 0 else offset + size
        piece = self._data[offset:end]
        self._position += len(piece)
        return piece

    def seek(self, position: int, whence: int = 0) -> int:
        if whence == 0 and not self._data:
            # Nothing held yet: a session resumed elsewhere continues at the
            # offset GCS reports (ResumableUpload.recover seeks there).
            self._start = self._position = position
            return position
        if whence != 0 or not self._start <= position <= self._start + len(self._data):
            raise ValueError("ChunkFeed can only seek within the current chunk")
        self._position = position
        return position

"""Pieces: the byte buffer the S3 writer cuts parts from and the reader cuts
chunks from, copying each byte once."""

from __future__ import annotations

from collections import deque


class Pieces:
    """Bytes kept as the pieces they arrived in, cut out with a single copy
    (the join; none for a piece taken whole)."""

    def __init__(self) -> None:
        self._pieces: deque[bytes | memoryview] = deque()
        self.size = 0

    def append(self, data: bytes) -> None:
        if data:
            self._pieces.append(data)
            self.size += len(data)

    def take(self, size: int) -> bytes:
        """The first size bytes (at most self.size)."""
        taken: list[bytes | memoryview] = []
        need = min(size, self.size)
        self.size -= need
        while need:
            piece = self._pieces[0]
            if len(piece) <= need:
                taken.append(self._pieces.popleft())
                need -= len(piece)
            else:
                view = memoryview(piece)
                taken.append(view[:need])
                self._pieces[0] = view[need:]
                need = 0
        return b"".join(taken)

    def clear(self) -> None:
        self._pieces.clear()
        self.size = 0

"""Writes a transaction defers: `pipe_file` and `put_file` inside `with
fs.transaction:` (files opened there are GatewayFiles with autocommit off).

Their bytes go to the gateway at once, as a written file's do (a PartUpload:
full blocks sent as parts of a resumable upload), and only the commit at the
transaction's end makes the object visible: its one Put, or the last part
of its upload. A transaction that fails discards them: the uploads are
aborted and nothing is stored.

A put_file keeps no bytes while it waits: what the gateway has not persisted
yet is read again from the local file at the commit, which refuses a file
changed since (its size or modification time). While it sends, it holds what
a written file holds (a block, or up to a backend's unit where the unit is
larger: the local driver's 32 MiB checkpoints), and once sent nothing; the
commits, one after another, read one file's rest at a time. So the memory
of a transaction does not grow with the files it puts.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from typing import BinaryIO

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile

from storagegw.fsspec._upload import Bytes, FileStore, PartUpload

__all__ = ["DeferredWrite", "defer_pipe", "defer_put"]

# The blocks sent as parts: a written file's default block size.
BLOCK_SIZE: int = AbstractBufferedFile.DEFAULT_BLOCK_SIZE


class DeferredWrite:
    """A write waiting for its transaction's end: fsspec's Transaction calls
    commit() or discard() on it as on the files opened in the transaction."""

    def __init__(
        self, fs: FileStore, part: PartUpload, source: tuple[str, os.stat_result] | None = None
    ) -> None:
        self.fs = fs
        self.part = part
        # The local file put, and its state when it was read: the bytes from
        # part.persisted on are read from it again at the commit.
        self.source = source

    def commit(self) -> None:
        sync(self.fs.loop, self._commit)

    def discard(self) -> None:
        sync(self.fs.loop, self.part.discard)

    async def _commit(self) -> None:
        if self.source is None:
            await self.part.commit()
            return
        path, seen = self.source
        try:
            rest = await asyncio.to_thread(_read_unchanged, path, seen, self.part.persisted)
        except BaseException:
            await self.part.discard()
            raise
        await self.part.commit(rest)


async def defer_pipe(
    fs: FileStore, key: str, data: Bytes, creating: bool, block_size: int = BLOCK_SIZE
) -> DeferredWrite:
    """pipe_file(key, data) in a transaction: sent now, committed at its end."""
    part = PartUpload(fs, key, creating, block_size)
    view = memoryview(data)
    for start in range(0, max(1, len(view)), block_size):
        await part.add(view[start : start + block_size], final=start + block_size >= len(view))
    return DeferredWrite(fs, part)


async def defer_put(
    fs: FileStore,
    lpath: str,
    key: str,
    creating: bool,
    progress: Callable[[int], object],
    block_size: int = BLOCK_SIZE,
) -> DeferredWrite:
    """put_file(lpath, key) in a transaction: sent now, committed at its end."""
    seen = await asyncio.to_thread(os.stat, lpath)
    part = PartUpload(fs, key, creating, block_size)
    file: BinaryIO = await asyncio.to_thread(open, lpath, "rb")

    def read(index: int) -> bytes:
        expected = min(block_size, seen.st_size - index * block_size)
        block = file.read(expected)
        if len(block) != expected:
            raise _changed(lpath)
        return block

    try:
        blocks = max(1, -(-seen.st_size // block_size))
        for index in range(blocks):
            await part.add(await asyncio.to_thread(read, index), final=index == blocks - 1)
            progress(min(seen.st_size, (index + 1) * block_size))
    except BaseException:
        await part.discard()
        raise
    finally:
        await asyncio.to_thread(file.close)
    part.release()  # read again at the commit
    return DeferredWrite(fs, part, (lpath, seen))


def _read_unchanged(path: str, seen: os.stat_result, offset: int) -> bytes:
    """The bytes of `path` from `offset` on, if it is as it was when put."""
    with open(path, "rb") as file:
        now = os.fstat(file.fileno())
        if (now.st_size, now.st_mtime_ns) != (seen.st_size, seen.st_mtime_ns):
            raise _changed(path)
        file.seek(offset)
        return file.read()


def _changed(path: str) -> OSError:
    return OSError(errno.ESTALE, "the file changed before the transaction's end", path)

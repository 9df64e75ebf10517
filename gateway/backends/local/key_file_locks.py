"""Per-key file locks of the local driver, for processes sharing one root.

The asyncio locks of key_locks.py order a key's commits and deletes within a
process. Several processes serving one root (GATEWAY_WORKERS, or two gateways
on the same directory) also need a conditional write's check-and-rename to
be atomic between them: exactly one of two Puts with the same if-generation
or if-match wins. So a commit and a delete also hold an exclusive flock on
one of STRIPES lock files under root/locks, chosen by a hash of the key that
every process computes alike (not Python's hash(), which is salted per
process). A fixed set of files rather than one per key: nothing to remove,
however many keys come and go; two keys sharing a stripe only wait for each
other's commit (an fsync), rarely.

Blocking: taken in the worker thread that does the commit, never on the event
loop. Each hold opens its own file description, so that two threads of one
process exclude each other too (flock belongs to the open file, not to the
process), and the kernel drops the lock if the process dies.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from gateway.domain.fsutil import make_private_dirs

STRIPES = 4096
FILE_MODE = 0o600


class KeyFileLocks:
    """Exclusive flocks by key, over STRIPES files in directory."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        make_private_dirs(directory)

    def path(self, key: str) -> str:
        """The lock file of key."""
        stripe = zlib.crc32(key.encode("utf-8", "surrogatepass")) % STRIPES
        return os.path.join(self._directory, f"{stripe:03x}")

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """key's lock, held inside (blocking: waits for another holder)."""
        fd = os.open(self.path(key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def hold_all(self, *keys: str) -> Iterator[None]:
        """The locks of all keys, held inside. Their stripes are taken once
        each (two descriptions of one file exclude each other, so a second
        flock of a stripe already held would wait forever) and in the order
        of their files, the same in every thread and process: no deadlock
        between two holders of the same two stripes."""
        with ExitStack() as held:
            for path in sorted({self.path(key) for key in keys}):
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                held.callback(os.close, fd)  # closing releases the lock
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield

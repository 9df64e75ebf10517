"""The local backend's temp files: each write's, in root/tmp until its
commit renames it over the key.

A writer's temp file holds an flock for as long as the writer has it, so that
remove_temp_unless_locked, which a starting backend runs on the temp files
left behind by a crash, spares those of writes in flight in another process
(GATEWAY_WORKERS, or another gateway on the same root).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from contextlib import suppress

FILE_MODE = 0o600


def create_temp(tmp_dir: str) -> tuple[int, str]:
    """A new, flocked, empty temp file in tmp_dir: (fd, path) (blocking)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        path = os.path.join(tmp_dir, secrets.token_hex(16) + ".tmp")
        try:
            fd = os.open(path, flags, FILE_MODE)
        except FileExistsError:
            continue
        # Best effort: a filesystem without flock only loses the guard against
        # another process's start() removing this file.
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink:
            return fd, path
        # Another process's start() removed it before the flock (it unlinks
        # under the lock, so not after): a new one.
        os.close(fd)


def remove_temp_unless_locked(path: str) -> None:
    """Remove a leftover temp file unless a live writer holds its flock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        with suppress(OSError):
            os.unlink(path)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Under the lock: a writer that creates the file and locks it right
        # after finds it unlinked, and makes another (create_temp).
        with suppress(FileNotFoundError):
            os.unlink(path)
    except OSError:
        return  # a writer in another process is using it
    finally:
        os.close(fd)

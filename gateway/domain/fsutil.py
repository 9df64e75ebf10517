"""Small filesystem helpers shared by the local driver and the URL-secret file."""

from __future__ import annotations

import os
from collections.abc import Callable


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Directories of stored data are the gateway's alone: key names are no one
# else's business (object files are 0600 for their contents' sake).
PRIVATE_DIR_MODE = 0o700


def make_private_dirs(
    path: str | os.PathLike[str], made: Callable[[str], None] | None = None
) -> None:
    """os.makedirs(path, exist_ok=True), every directory it creates 0700
    (os.makedirs gives its mode to the last one only). Existing ones are
    left as they are. made(directory) is called for each directory this
    call created, or found made by a concurrent creator."""
    missing = []
    current = os.path.abspath(path)  # a relative path's dirname ends in ""
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
        if made is not None:
            made(directory)

"""The local backend's listing: a walk of root/objects in key order.

Keys are walked depth first, each directory's entries sorted bytewise, which
is the order of the keys' UTF-8 encodings (a directory "a/" sorts as the
prefix of its keys). Subtrees that cannot hold a key with the prefix that is
greater than the start point are skipped without being read. Files whose
names are not UTF-8 or that are not object files are not keys and are
skipped, as are objects deleted while the walk reaches them.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Iterable, Sequence

from gateway.backends.local.format import read_current
from gateway.domain.errors import GatewayError
from gateway.domain.objects import ObjectMeta

# Files whose headers one thread hop reads while listing.
_LIST_BATCH = 128
# (key, or key prefix ending in "/" for a directory; whether a directory)
_Entries = list[tuple[bytes, bool]]


class _Frame:
    __slots__ = ("entries", "index")

    def __init__(self, entries: _Entries) -> None:
        self.entries = entries
        self.index = 0


def _scan(objects_dir: bytes, directory: bytes, prefix: bytes, after: bytes) -> _Entries:
    """(key or key prefix ending in '/', is_dir) for the entries of the
    directory whose key prefix is directory, in key order, without those
    that cannot hold a key starting with prefix and greater than after."""
    path = objects_dir + b"/" + directory if directory else objects_dir
    found: _Entries = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        sub = directory + entry.name + b"/"
                        # Every key below starts with sub: skip the subtree
                        # unless one may start with prefix and exceed after.
                        if (sub.startswith(prefix) or prefix.startswith(sub)) and (
                            sub > after or after.startswith(sub)
                        ):
                            found.append((sub, True))
                    elif entry.is_file(follow_symlinks=False):
                        name = directory + entry.name
                        if name.startswith(prefix) and name > after:
                            found.append((name, False))
                except OSError:
                    continue
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return []
        raise
    found.sort()
    return found


def _read_metas(objects_dir: bytes, names: Iterable[bytes]) -> Sequence[ObjectMeta]:
    metas = []
    for name in names:
        try:
            key = name.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not a file this backend wrote
        path = os.fsdecode(objects_dir + b"/" + name)
        try:
            meta = read_current(path, key)
        except (OSError, GatewayError):
            continue  # removed meanwhile, or not an object file
        if meta is not None:
            metas.append(meta)
    return metas


async def walk_objects(objects_dir: bytes, prefix: str, after: bytes) -> AsyncIterator[ObjectMeta]:
    encoded = prefix.encode()
    # Start in the deepest directory the prefix names completely.
    base, slash, _ = encoded.rpartition(b"/")
    start = base + slash
    # Depth first: a stack of (sorted entries of a directory, next index).
    frames = [_Frame(await asyncio.to_thread(_scan, objects_dir, start, encoded, after))]
    while frames:
        frame = frames[-1]
        entries, index = frame.entries, frame.index
        if index >= len(entries):
            frames.pop()
            continue
        name, is_dir = entries[index]
        if is_dir:
            frame.index = index + 1
            sub = await asyncio.to_thread(_scan, objects_dir, name, encoded, after)
            frames.append(_Frame(sub))
            continue
        stop = index
        while stop < len(entries) and not entries[stop][1] and stop - index < _LIST_BATCH:
            stop += 1
        frame.index = stop
        names = [entry[0] for entry in entries[index:stop]]
        for meta in await asyncio.to_thread(_read_metas, objects_dir, names):
            yield meta

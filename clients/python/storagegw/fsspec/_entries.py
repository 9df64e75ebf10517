"""Paths and listing entries: how object keys look as fsspec paths.

A GatewayFileSystem is one bucket of one gateway, so its paths are the
bucket's keys ("reports/2024/q1.csv"); a URL names the bucket as its host
(storagegw://bucket/reports/2024/q1.csv; storagegw:///key is the gateway's
default bucket). Directories are not stored: a directory is a prefix that
some key continues with "/", as in s3fs and gcsfs.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from storagegw._types import ObjectInfo

__all__ = [
    "PROTOCOL",
    "Entry",
    "bucket_of_url",
    "directory_entry",
    "file_entry",
    "needs_size",
    "parents_between",
    "read_window",
    "strip_url",
]

PROTOCOL = "storagegw"
_SCHEME = f"{PROTOCOL}://"

# An fsspec listing entry (the dict `info` and `ls(detail=True)` return).
Entry = dict[str, Any]


def strip_url(path: str | os.PathLike[str]) -> str:
    """The key a path or URL names: the URL's bucket (its host) dropped, and
    the slashes at either end (keys neither start nor end with one)."""
    text = os.fspath(path)
    if text.startswith(_SCHEME):
        text = text[len(_SCHEME) :].partition("/")[2]
    return text.strip("/")


def bucket_of_url(url: str) -> str | None:
    """The bucket a storagegw:// URL names ("" for the default bucket), or
    None for a bare path."""
    if not url.startswith(_SCHEME):
        return None
    return urlsplit(url).netloc


def file_entry(info: ObjectInfo) -> Entry:
    """An object's entry: fsspec's name, size and type, and what the gateway knows."""
    return {
        "name": info.key,
        "size": info.size,
        "type": "file",
        "content_type": info.content_type,
        "etag": info.etag,
        "generation": info.generation,
        "crc32c": None if info.crc32c is None else f"{info.crc32c:08x}",
        "mtime": info.update_time,
        "created": info.create_time,
        "storage_class": info.storage_class,
        "metadata": dict(info.metadata),
    }


def directory_entry(name: str) -> Entry:
    return {"name": name.rstrip("/"), "size": 0, "type": "directory"}


def parents_between(top: str, key: str) -> list[str]:
    """The directories strictly between `top` ("" for the root) and `key`:
    parents_between("a", "a/b/c/d") == ["a/b", "a/b/c"]."""
    start = len(top) + 1 if top else 0
    parts = key[start:].split("/")[:-1]
    found: list[str] = []
    current = top
    for part in parts:
        current = f"{current}/{part}" if current else part
        found.append(current)
    return found


def needs_size(start: int | None, end: int | None) -> bool:
    """Whether read_window needs the object's size for cat_file(start, end)."""
    return (end is not None and end < 0) or (start is not None and start < 0 and end is not None)


def read_window(start: int | None, end: int | None, size: int | None) -> tuple[int, int | None]:
    """The Get's (offset, length) for fsspec's cat_file(start, end): None is
    the object's start or end, a negative value counts from the end. A
    negative start with no end is a suffix read, which the gateway serves
    itself; any other negative value needs `size` (see needs_size)."""
    if size is not None:
        if start is not None and start < 0:
            start = max(0, size + start)
        if end is not None and end < 0:
            end = max(0, size + end)
    offset = start or 0
    length = None if end is None else max(0, end - max(offset, 0))
    return offset, length

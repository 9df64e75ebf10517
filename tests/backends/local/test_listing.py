"""Driver-level tests of the local backend, on a real directory: listing in bytewise
key order, by pages, prefixes and delimiters, past files that are no objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.backends.local.backend import LocalBackend
from gateway.domain.errors import Reason
from gateway.domain.keys import validate_key
from gateway.domain.objects import ListQuery, WriteOptions
from tests.backends.local.driver_checks import BIG, expect, tmp_files
from tests.drivers import list_all, put, utf8


def make_keys() -> list[str]:
    """~300 keys with no key equal to a directory of another, mixing the
    bytes around '/' (0x2F): '-' 0x2D, '.' 0x2E, '0' 0x30, and non-ASCII."""
    files = ["a.b", "a0", "a-", "ab", "B", "é.x", "éa", "日本語", "z\U0001f600"]
    dirs = ["a", "é", "日本", "\U0001f600", "x.y"]
    keys = set(files)
    for i in range(60):
        top = dirs[i % len(dirs)]
        keys.add(f"{top}/{files[i % len(files)]}{i}")
        keys.add(f"{top}/{dirs[(i // 5) % len(dirs)]}/{i}")
        keys.add(f"{top}/{dirs[(i // 5) % len(dirs)]}-{i}")
        keys.add(f"{top}/{i}/{files[i % len(files)]}")
        keys.add(f"{top}{i}")
    for key in keys:
        validate_key(key)
    # Keys that are also directories of other keys cannot exist on a filesystem.
    return sorted(k for k in keys if not any(o.startswith(k + "/") for o in keys))


@pytest.fixture
async def populated(backend: LocalBackend) -> tuple[LocalBackend, list[str]]:
    keys = make_keys()
    for key in keys:
        await put(backend, key, key.encode())
    return backend, keys


async def test_listing_order_is_bytewise(
    populated: tuple[LocalBackend, list[str]], tmp_path: Path
) -> None:
    backend, keys = populated
    assert len(keys) >= 280
    expected = sorted(keys, key=utf8)
    # A naive per-directory sort would put "a/..." before "a-", "a.b".
    assert (
        expected.index("a-")
        < expected.index("a.b")
        < expected.index("a/0/a.b")
        < (expected.index("a0"))
    )
    writer = await backend.open_write("in-flight", WriteOptions())
    await writer.write(os.urandom(BIG))
    assert tmp_files(tmp_path)
    page = await backend.list(ListQuery(page_size=10_000))
    assert [meta.key for meta in page.objects] == expected
    assert page.next_page_token == ""
    assert page.objects[0] == await backend.head(expected[0])
    await writer.abort()


async def test_pagination_covers_every_key_once(
    populated: tuple[LocalBackend, list[str]],
) -> None:
    backend, keys = populated
    expected = sorted(keys, key=utf8)
    for page_size in (1, 7, 50):
        listed, _ = await list_all(backend, page_size=page_size)
        assert listed == expected


async def test_delimiter_gives_common_prefixes(
    populated: tuple[LocalBackend, list[str]],
) -> None:
    backend, keys = populated
    listed, prefixes = await list_all(backend, delimiter="/", page_size=4)
    assert listed == sorted((k for k in keys if "/" not in k), key=utf8)
    assert prefixes == sorted({k.split("/")[0] + "/" for k in keys if "/" in k}, key=utf8)
    listed, prefixes = await list_all(backend, prefix="a/", delimiter="/", page_size=3)
    under = [k[2:] for k in keys if k.startswith("a/")]
    assert listed == sorted((f"a/{k}" for k in under if "/" not in k), key=utf8)
    assert prefixes == sorted({"a/" + k.split("/")[0] + "/" for k in under if "/" in k}, key=utf8)
    assert listed
    assert prefixes


@pytest.mark.parametrize("prefix", ["a", "a/", "a/a", "é", "日本/", "x.y/é/", "nothing", "a.b/"])
async def test_prefix_listing(populated: tuple[LocalBackend, list[str]], prefix: str) -> None:
    backend, keys = populated
    listed, _ = await list_all(backend, prefix=prefix, page_size=9)
    assert listed == sorted((k for k in keys if k.startswith(prefix)), key=utf8)


async def test_start_after(populated: tuple[LocalBackend, list[str]]) -> None:
    backend, keys = populated
    expected = sorted(keys, key=utf8)
    for start_after in (expected[0], "a", "a/", "a/é", expected[150], "日", expected[-1]):
        page = await backend.list(ListQuery(page_size=10_000, start_after=start_after))
        assert [m.key for m in page.objects] == [k for k in expected if utf8(k) > utf8(start_after)]


async def test_listing_skips_foreign_files(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "real", b"")
    (tmp_path / "objects" / "stray").write_bytes(b"not an object file")
    os.symlink(tmp_path / "objects" / "real", tmp_path / "objects" / "link")
    page = await backend.list(ListQuery(page_size=100))
    assert [meta.key for meta in page.objects] == ["real"]
    await expect(Reason.OBJECT_NOT_FOUND, backend.head("link"))

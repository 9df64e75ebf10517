"""Driver-level tests of the local backend, on a real directory: keys as paths, the
directories they make (durably, beside concurrent creators and deleters) and the
keys a filesystem cannot hold."""

from __future__ import annotations

import asyncio
import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.backends.local import format as local_format
from gateway.backends.local.backend import LocalBackend
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.keys import validate_key
from gateway.domain.objects import Conditions, CopyRequest, WriteOptions
from tests.backends.local.driver_checks import expect, object_files, tmp_files
from tests.drivers import get, put


async def test_key_conflict_object_then_deeper_key(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "a", b"file a")
    for key in ("a/b", "a/b/c"):
        error = await expect(Reason.KEY_CONFLICT, put(backend, key, b"x"))
        assert "'a' is an object" in error.message
    assert tmp_files(tmp_path) == []
    assert object_files(tmp_path) == ["a"]
    assert await get(backend, "a") == b"file a"


async def test_key_conflict_prefix_then_object(backend: LocalBackend, tmp_path: Path) -> None:
    await put(backend, "x/y", b"under x")
    for conditions in (Conditions(), Conditions(if_none_match="*")):
        error = await expect(
            Reason.KEY_CONFLICT, put(backend, "x", b"x", WriteOptions(conditions=conditions))
        )
        assert "prefix of existing objects" in error.message
    assert tmp_files(tmp_path) == []
    assert await get(backend, "x/y") == b"under x"


async def test_copy_key_conflict(backend: LocalBackend) -> None:
    await put(backend, "a", b"a")
    await expect(Reason.KEY_CONFLICT, backend.copy(CopyRequest("a", "a/copy")))


async def test_empty_parent_directories_removed_after_delete(
    backend: LocalBackend, tmp_path: Path
) -> None:
    await put(backend, "d1/d2/d3/k", b"deep")
    await put(backend, "d1/other", b"sibling")
    assert await backend.delete("d1/d2/d3/k") is True
    assert not (tmp_path / "objects" / "d1" / "d2").exists()
    assert (tmp_path / "objects" / "d1").is_dir()
    assert await backend.delete("d1/other") is True
    assert not (tmp_path / "objects" / "d1").exists()
    assert (tmp_path / "objects").is_dir()
    assert await backend.delete("d1/other") is False
    # The freed names can be objects now.
    await put(backend, "d1", b"now a file")
    assert await get(backend, "d1") == b"now a file"


def record_dir_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Wrap local_format.fsync_dir to record, for each call, the directory
    and its entries at that moment; the fsync itself still happens."""
    calls: list[tuple[str, list[str]]] = []
    real = local_format.fsync_dir

    def fsync_dir(path: str) -> None:
        calls.append((path, sorted(os.listdir(path))))
        real(path)

    monkeypatch.setattr(local_format, "fsync_dir", fsync_dir)
    return calls


def assert_creations_fsynced(
    calls: list[tuple[str, list[str]]], objects: str, created: list[str]
) -> None:
    """Each directory in created (relative to objects) is on disk, and its
    parent was fsynced once it held the directory's entry."""
    for relative in created:
        directory = os.path.join(objects, relative)
        assert os.path.isdir(directory), relative
        parent, name = os.path.split(directory)
        assert any(path == parent and name in entries for path, entries in calls), (
            f"{parent} not fsynced after {name} was created in it: {calls}"
        )


async def test_new_directories_of_a_deep_key_are_durable(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    await put(backend, "a/b/c/obj", b"deep")
    assert_creations_fsynced(calls, objects, ["a", "a/b", "a/b/c"])
    assert await get(backend, "a/b/c/obj") == b"deep"
    # Under a partly existing path only the missing levels are created.
    calls.clear()
    await put(backend, "a/b/x/y/obj", b"deeper")
    assert_creations_fsynced(calls, objects, ["a/b/x", "a/b/x/y"])
    assert not any(path in (objects, os.path.join(objects, "a")) for path, _ in calls)
    assert object_files(tmp_path) == ["a/b/c/obj", "a/b/x/y/obj"]


async def test_directory_made_by_a_concurrent_creator_is_accepted(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    real_mkdir = os.mkdir

    def mkdir_after_another(path: str, *args: int) -> None:
        # Another writer creates the directory first: this mkdir then fails.
        if path.startswith(objects + os.sep):
            real_mkdir(path)
        real_mkdir(path, *args)

    monkeypatch.setattr(local_format.os, "mkdir", mkdir_after_another)
    await put(backend, "p/q/obj", b"x")
    monkeypatch.undo()
    assert_creations_fsynced(calls, objects, ["p", "p/q"])
    assert await get(backend, "p/q/obj") == b"x"


async def test_directory_removed_by_a_concurrent_delete_is_recreated(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    real_mkdir = os.mkdir
    removed: list[str] = []

    def mkdir_racing_a_delete(path: str, *args: int) -> None:
        # The first time: a delete removes the just created, still empty,
        # parent before its child is made.
        if not removed and path == os.path.join(objects, "r", "s"):
            removed.append(os.path.dirname(path))
            os.rmdir(os.path.dirname(path))
        real_mkdir(path, *args)

    monkeypatch.setattr(local_format.os, "mkdir", mkdir_racing_a_delete)
    await put(backend, "r/s/obj", b"x")
    monkeypatch.undo()
    assert removed == [os.path.join(objects, "r")]
    assert await get(backend, "r/s/obj") == b"x"


async def test_concurrent_deep_puts_share_directories(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = os.path.realpath(tmp_path / "objects")
    calls = record_dir_fsyncs(monkeypatch)
    keys = [f"s/t/u{i % 3}/k{i}" for i in range(24)]
    await asyncio.gather(*(put(backend, key, key.encode()) for key in keys))
    assert_creations_fsynced(calls, objects, ["s", "s/t", "s/t/u0", "s/t/u1", "s/t/u2"])
    assert object_files(tmp_path) == sorted(keys)
    assert tmp_files(tmp_path) == []


async def test_delete_of_a_prefix_is_not_an_object(backend: LocalBackend) -> None:
    await put(backend, "p/q", b"")
    assert await backend.delete("p") is False
    assert await backend.delete("p/q/r") is False
    assert (await backend.head("p/q")).size == 0


async def test_long_segment_is_an_invalid_key(backend: LocalBackend) -> None:
    long_key = "dir/" + "é" * 128  # 256 bytes in UTF-8
    await expect(Reason.INVALID_KEY, backend.open_write(long_key, WriteOptions()))
    ok = "dir/" + "e" * 255
    await put(backend, ok, b"fits")
    assert await get(backend, ok) == b"fits"


segment = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="/\\"
        ),
        min_size=1,
        max_size=12,
    ).map(lambda text: unicodedata.normalize("NFC", text))
    | st.sampled_from([".", "..", "...", "~", ".hidden", "é", "e\u0301", "/", "a/../b", " "])
    | st.text(alphabet="é日\U0001f600x", min_size=60, max_size=90)
)


def test_paths_stay_inside_objects(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    objects = os.path.realpath(tmp_path / "objects")

    @settings(
        max_examples=500,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(st.lists(segment, min_size=1, max_size=5).map("/".join))
    def check(key: str) -> None:
        try:
            validate_key(key)
        except GatewayError:
            assume(False)
        if max(len(part.encode()) for part in key.split("/")) > 255:
            with pytest.raises(GatewayError) as caught:
                backend._path(key)
            assert caught.value.reason is Reason.INVALID_KEY
            return
        path = backend._path(key)
        assert os.path.commonpath([objects, path]) == objects
        assert path != objects
        assert os.path.relpath(path, objects) == key

    check()


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "..", "/etc/passwd", "a/../b", "a//b", "./a", "a/"]
)
def test_path_refuses_keys_that_escape(tmp_path: Path, key: str) -> None:
    # Keys are validated before drivers see them; this is defence in depth.
    backend = LocalBackend(tmp_path)
    with pytest.raises(GatewayError) as caught:
        backend._path(key)
    assert caught.value.reason is Reason.INVALID_KEY

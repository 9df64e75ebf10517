"""A write into a directory that a concurrent delete empties and removes
while another write creates it again (a dedup bucket's temp objects, all in
one directory, do this all the time): the write goes in, it is no
KEY_CONFLICT. The race is made certain by having the directory vanish
between the two looks make_dirs takes at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.backends.local import object_files
from gateway.backends.local.backend import LocalBackend
from gateway.domain.errors import GatewayError, Reason
from tests.drivers import get, put


async def test_a_directory_made_and_removed_meanwhile_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(tmp_path)
    real = object_files.make_dirs
    raced = []

    def made_then_removed(path: str) -> None:
        if not raced:
            # Another write made it (mkdir: FileExistsError), and a delete
            # removed it before make_dirs could see a directory there.
            raced.append(path)
            raise FileExistsError(path)
        real(path)

    monkeypatch.setattr(object_files, "make_dirs", made_then_removed)
    await put(backend, "dir/k", b"value")
    assert raced
    assert await get(backend, "dir/k") == b"value"


async def test_a_file_above_the_key_is_still_a_conflict(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    await put(backend, "dir", b"a file")
    with pytest.raises(GatewayError) as caught:
        await put(backend, "dir/k", b"value")
    assert caught.value.reason is Reason.KEY_CONFLICT

"""What the local driver left on disk, and the refusals its calls give: shared by the
driver-level tests of the local backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.backends.local import io as local_io
from gateway.domain.errors import GatewayError, Reason

# More than a writer keeps in memory: its temp file exists before commit.
BIG = local_io.WRITE_BUFFER_LIMIT + 1


def tmp_files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "tmp"))


def object_files(root: Path) -> list[str]:
    found = []
    for directory, _, files in os.walk(root / "objects"):
        for name in files:
            found.append(os.path.relpath(os.path.join(directory, name), root / "objects"))
    return sorted(found)


async def expect(reason: Reason, awaitable: object) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.reason is reason, caught.value
    return caught.value

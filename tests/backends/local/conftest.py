"""A local backend on the test's own directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.backends.local.backend import LocalBackend


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path)

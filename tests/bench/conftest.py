"""What the bench tests share: the bench's own process tracker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import procs


@pytest.fixture
def processes() -> Iterator[procs.Processes]:
    """The processes a bench section starts, stopped after the test."""
    started = procs.Processes()
    yield started
    started.stop_all()

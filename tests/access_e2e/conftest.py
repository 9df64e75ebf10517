"""The audit log, captured for the access tests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest


class Records(logging.Handler):
    """Records of one logger; wait() blocks until one satisfies a test."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._arrived:
            self.records.append(record)
            self._arrived.notify_all()

    def wait(self, test: Callable[[logging.LogRecord], bool]) -> logging.LogRecord:
        def found() -> logging.LogRecord | None:
            return next((r for r in self.records if test(r)), None)

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, 30)
            record = found()
        assert record is not None, [r.__dict__ for r in self.records]
        return record


@pytest.fixture
def audit_log() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("storagegw.audit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

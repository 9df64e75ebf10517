"""The records of one of the gateway's loggers, collected while a test runs (the
access_log fixture of conftest.py holds the per-RPC access log's)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.drivers import S3_TEST_BUCKET as S3_TEST_BUCKET  # for the modules that import it here
from tests.drivers import gcs_env as gcs_env


class LogRecords(logging.Handler):
    """Collects one logger's records; wait() blocks until one arrives that
    satisfies a test (for the access log: an RPC method's name)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._arrived:
            self.records.append(record)
            self._arrived.notify_all()

    def wait(
        self, test: str | Callable[[logging.LogRecord], bool], timeout: float = 30
    ) -> logging.LogRecord:
        if isinstance(test, str):
            method = test

            def test(record: logging.LogRecord) -> bool:
                return bool(getattr(record, "rpc_method", None) == method)

        def found() -> logging.LogRecord | None:
            return next((r for r in self.records if test(r)), None)

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, timeout)
            record = found()
        assert record is not None, [r.__dict__ for r in self.records]
        return record


# The per-RPC access log's records.
AccessLog = LogRecords


@contextmanager
def captured(logger_name: str) -> Iterator[LogRecords]:
    """The records of one of the gateway's loggers, at INFO, while inside."""
    handler = LogRecords()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

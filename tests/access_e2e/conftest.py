"""The audit log, captured for the access tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.log_records import LogRecords, captured


@pytest.fixture
def audit_log() -> Iterator[LogRecords]:
    with captured("storagegw.audit") as records:
        yield records

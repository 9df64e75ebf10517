"""Audit lines: one per call, on their own logger, every field in the JSON
format and a readable line in the text format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway import logs
from gateway.access import audit
from gateway.domain.identity import Principal, Proof

ALICE = Principal("alice", Proof.JWT)


@pytest.fixture
def lines() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RedactingFilter())
    logger = logging.getLogger(audit.LOGGER_NAME)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_json_audit_line_has_every_field(lines: tuple[io.StringIO, logging.Handler]) -> None:
    stream, handler = lines
    handler.setFormatter(logs.JsonFormatter())

    audit.record(
        principal=ALICE, method="Delete", action="delete", bucket="tenants",
        key="tenants/bob/a.txt", outcome="denied", reason="ACCESS_DENIED",
        peer="ipv4:10.0.0.7:51234", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )  # fmt: skip

    entry = json.loads(stream.getvalue())
    assert entry["logger"] == "storagegw.audit"
    assert {name: entry[name] for name in audit.FIELDS} == {
        "principal": "alice",
        "proof": "jwt",
        "method": "Delete",
        "action": "delete",
        "bucket": "tenants",
        "key": "tenants/bob/a.txt",
        "outcome": "denied",
        "reason": "ACCESS_DENIED",
        "peer": "ipv4:10.0.0.7:51234",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }


def test_a_text_audit_line_reads_as_a_sentence(lines: tuple[io.StringIO, logging.Handler]) -> None:
    stream, handler = lines
    handler.setFormatter(logs.TextFormatter())

    audit.record(
        principal=ALICE, method="Put", action="write", bucket="tenants",
        key="tenants/alice/a.txt", outcome="ok", peer="ipv4:10.0.0.7:51234",
    )  # fmt: skip

    line = stream.getvalue()
    assert "audit ok alice (jwt) Put write tenants/tenants/alice/a.txt from ipv4:10.0.0.7" in line

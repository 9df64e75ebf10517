"""The access log names each call's bucket the same way, however the request spelled it."""

from __future__ import annotations

import time

import pytest

from storagegw import Client, NotFound

EXPECTED = {"Put", "Head", "List", "StartUpload", "QueryUpload", "Copy", "AbortUpload"}


def _logged(access_log, last_key: str, timeout: float = 30) -> list:
    """The records once every expected method and the call on last_key are in: a
    call's line is written as it ends, which may be just after the client has its
    answer (bounded polling, no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = list(access_log.records)
        if {r.rpc_method for r in records} >= EXPECTED and last_key in {r.key for r in records}:
            return records
        time.sleep(0.01)
    raise AssertionError([r.getMessage() for r in access_log.records])


@pytest.mark.parametrize("bucket", ["", "media"])
def test_every_call_logs_the_resolved_bucket(gateway_factory, access_log, tmp_path, bucket):
    running = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_DEFAULT_BUCKET="media")
    source = tmp_path / "file.bin"
    source.write_bytes(b"x" * 1000)
    with Client(running.target, bucket=bucket) as client:
        client.put_file("plain.bin", str(source), resumable=False)
        client.head("plain.bin")
        list(client.list())
        session = client.start_upload("resumed.bin")
        client.query_upload(session.upload_id)
        client.resume_upload(session.upload_id, str(source))
        client.copy("plain.bin", "copy.bin")
        abandoned = client.start_upload("never.bin")
        client.abort_upload(abandoned.upload_id)
        with pytest.raises(NotFound):
            client.head("missing.bin")
    calls = [(r.rpc_method, r.key, r.bucket) for r in _logged(access_log, "missing.bin")]
    assert {bucket for _, _, bucket in calls} == {"media"}, calls

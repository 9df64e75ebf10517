"""The `storagegw` command's resumable uploads against a real gateway: put
--resume, upload-status, put --upload-id, upload-abort, and what stat and
upload-status print."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from storagegw._crc32c import crc32c
from tests.client.cli_command import run


def test_put_resume_round_trip_prints_the_upload_id(memory_gateway, tmp_path):
    target = memory_gateway.target
    data = os.urandom(3 * 1024 * 1024 + 1)
    (tmp_path / "big.bin").write_bytes(data)
    put = run(target, "put", "--resume", str(tmp_path / "big.bin"), "resumed.bin")
    upload_id = put.stderr.decode().split("upload id: ", 1)[1].split()[0]
    assert run(target, "get", "resumed.bin", "-").stdout == data
    status = json.loads(run(target, "upload-status", upload_id, "--json").stdout)
    assert status["complete"] is True
    assert status["persisted_size"] == len(data)
    assert status["object"]["sha256"] == hashlib.sha256(data).hexdigest()
    plain = run(target, "upload-status", upload_id).stdout.decode()
    assert "complete: yes" in plain
    assert f"object.size: {len(data)}" in plain


def test_upload_status_and_continue_an_upload_in_progress(memory_gateway, tmp_path):
    import grpc

    from storagegw import Client
    from storagegw.v1 import storage_pb2 as pb
    from storagegw.v1 import storage_pb2_grpc

    target = memory_gateway.target
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "part.bin").write_bytes(data)
    with Client(target) as client:
        session = client.start_upload("partial.bin")
        first = pb.PutRequest(upload_id=session.upload_id, write_offset=0)
        piece = data[: 1024 * 1024]
        chunk = pb.PutRequest(
            write_offset=0, chunk=pb.ChecksummedData(content=piece, crc32c=crc32c(piece))
        )
        with grpc.insecure_channel(target) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            partial = stub.Put(iter([first, chunk]))
        assert not partial.HasField("object")
    status = json.loads(run(target, "upload-status", session.upload_id, "--json").stdout)
    assert status["complete"] is False
    assert status["persisted_size"] == 1024 * 1024
    assert status["object"] is None
    assert status["expire_time"]
    plain = run(target, "upload-status", session.upload_id).stdout.decode()
    assert "complete: no" in plain
    assert "persisted_size: 1048576" in plain

    run(target, "put", "--upload-id", session.upload_id, str(tmp_path / "part.bin"), "partial.bin")
    assert run(target, "get", "partial.bin", "-").stdout == data


@pytest.mark.parametrize(
    ("command", "code", "reason"),
    [
        (["upload-status", "bogus-id"], 6, b"INVALID_UPLOAD_ID"),
        (["upload-abort", "bogus-id"], 6, b"INVALID_UPLOAD_ID"),
        (["put", "--upload-id", "bogus-id", "FILE", "k"], 6, b"INVALID_UPLOAD_ID"),
    ],
)
def test_bad_upload_id(memory_gateway, tmp_path, command, code, reason):
    (tmp_path / "f").write_bytes(b"x")
    command = [str(tmp_path / "f") if word == "FILE" else word for word in command]
    result = run(memory_gateway.target, *command, check=False)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith(b"storagegw: error: ")
    assert reason in result.stderr


def test_upload_abort(memory_gateway):
    from storagegw import Client

    with Client(memory_gateway.target) as client:
        session = client.start_upload("never.bin")
    run(memory_gateway.target, "upload-abort", session.upload_id)
    result = run(memory_gateway.target, "upload-status", session.upload_id, check=False)
    assert result.returncode == 3
    assert b"UPLOAD_NOT_FOUND" in result.stderr


def test_stat_and_upload_status_leave_out_empty_fields(local_gateway, tmp_path):
    target = local_gateway.target
    (tmp_path / "a.txt").write_bytes(b"some text")
    put = run(target, "put", "--resume", str(tmp_path / "a.txt"), "a.txt")
    upload_id = put.stderr.decode().split("upload id: ", 1)[1].split()[0]
    stat = run(target, "stat", "a.txt").stdout.decode().splitlines()
    status = run(target, "upload-status", upload_id).stdout.decode().splitlines()
    for lines in (stat, status):
        assert lines
        for line in lines:
            name, _, value = line.partition(": ")
            assert value.strip(), f"empty field {name!r}"
    assert "key: a.txt" in stat
    assert "object.key: a.txt" in status
    # The local backend has no storage classes: nothing to show.
    assert not [line for line in stat + status if "storage_class" in line]

"""The `storagegw` command end to end, in subprocesses, against a real gateway."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from storagegw._crc32c import crc32c
from tests.conftest import REPO, gateway_process

CLI = str(REPO / ".venv" / "bin" / "storagegw")
if not Path(CLI).exists():  # installed elsewhere (e.g. a system-wide pip install)
    CLI = str(Path(sys.executable).with_name("storagegw"))


def run(target, *args, stdin=None, check=True):
    result = subprocess.run(
        [CLI, "--target", target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def test_put_get_ls_stat_rm(local_gateway, tmp_path):
    target = local_gateway.target
    source = tmp_path / "report.txt"
    data = os.urandom(1024 * 1024 + 5)
    source.write_bytes(data)
    put = run(target, "put", str(source), "docs/report.txt")
    assert put.stderr == b""  # piped: no progress bar
    out = tmp_path / "copy.txt"
    run(target, "get", "docs/report.txt", str(out))
    assert out.read_bytes() == data

    listing = run(target, "ls", "docs/").stdout.decode()
    assert listing.split() == ["docs/report.txt"]
    long = run(target, "ls", "-l").stdout.decode()
    assert str(len(data)) in long
    assert "text/plain" in long
    top = run(target, "ls", "-d", "/").stdout.decode()
    assert "PRE docs/" in top

    stat = json.loads(run(target, "stat", "docs/report.txt", "--json").stdout)
    assert stat["size"] == len(data)
    assert stat["sha256"] == hashlib.sha256(data).hexdigest()
    plain = run(target, "stat", "docs/report.txt").stdout.decode()
    assert "content_type" in plain or "content-type" in plain.lower()

    run(target, "rm", "docs/report.txt")
    assert run(target, "ls").stdout == b""


def test_stdin_and_stdout(memory_gateway):
    target = memory_gateway.target
    data = os.urandom(3 * 1024 * 1024)
    run(target, "put", "-", "piped.bin", stdin=data)
    result = run(target, "get", "piped.bin", "-")
    assert result.stdout == data


def test_sign_and_fetch(memory_gateway):
    target = memory_gateway.target
    run(target, "put", "-", "signed.txt", stdin=b"over http")
    url = run(target, "sign", "signed.txt", "--expires", "60").stdout.decode().strip()
    assert httpx.get(url).content == b"over http"


def test_sign_post_prints_a_curl_line_that_uploads(memory_gateway, tmp_path):
    target = memory_gateway.target
    result = run(
        target,
        "sign",
        "form.txt",
        "--method",
        "POST",
        "--content-type",
        "text/plain",
        "--max-size",
        "100",
    )
    url = result.stdout.decode().strip()
    curl_line = result.stderr.decode().strip().splitlines()[-1]
    assert curl_line.startswith("curl --form-string Content-Type=text/plain -F file=@FILE ")
    assert url in curl_line
    (tmp_path / "in.txt").write_bytes(b"sent by a form")
    command = curl_line.replace("file=@FILE", f"file=@{tmp_path / 'in.txt'}")
    uploaded = subprocess.run(["sh", "-c", command + " -fsS"], capture_output=True, check=False)
    assert uploaded.returncode == 0, uploaded.stderr
    assert run(target, "get", "form.txt", "-").stdout == b"sent by a form"


def test_cp_between_keys(memory_gateway):
    target = memory_gateway.target
    run(target, "put", "-", "a", stdin=b"content")
    run(target, "cp", "a", "default:b")
    assert run(target, "get", "b", "-").stdout == b"content"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get", "missing", "-"], 3),
        (["stat", "missing"], 3),
        (["put", "-", "bad//key"], 6),
        (["--bucket", "nosuchbucket", "ls"], 3),
    ],
)
def test_exit_codes(memory_gateway, args, code):
    result = run(memory_gateway.target, *args, stdin=b"x", check=False)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith(b"storagegw: error: ")


def test_create_only_put_exit_code(memory_gateway):
    target = memory_gateway.target
    run(target, "put", "-", "once", stdin=b"1")
    result = run(target, "put", "-n", "-", "once", stdin=b"2", check=False)
    assert result.returncode == 4
    assert b"PRECONDITION_FAILED" in result.stderr


def test_unreachable_gateway_exit_code():
    result = run("127.0.0.1:1", "--timeout", "5", "ls", check=False)
    assert result.returncode == 7


def test_usage_error_exit_code(memory_gateway):
    assert run(memory_gateway.target, "frobnicate", check=False).returncode == 2


def test_progress_bar_on_a_terminal(memory_gateway, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(8 * 1024 * 1024))
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [CLI, "--target", memory_gateway.target, "put", str(source), "big.bin"],
            stderr=follower,
            stdout=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert result.returncode == 0
    text = shown.decode(errors="replace")
    assert "8.0 MiB" in text or "8.00 MiB" in text or "8 MiB" in text, text
    assert "/s" in text, text


def test_storagegw_serve(tmp_path):
    with gateway_process(tmp_path, [CLI, "serve", "--backend", "memory"]) as served:
        run(served.target, "put", "-", "k", stdin=b"served")
        assert run(served.target, "get", "k", "-").stdout == b"served"


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
    from storagegw import Client
    from storagegw.v1 import storage_pb2 as pb

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
        partial = client._stub.Put(iter([first, chunk]))
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

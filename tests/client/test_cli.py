"""The `storagegw` command end to end, in subprocesses, against a real gateway:
put, get, ls, stat, rm, stdin and stdout, sign, cp, its exit codes, and serve."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import httpx
import pytest

from tests.client.cli_command import CLI, run
from tests.conftest import gateway_process


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


def test_storagegw_serve(tmp_path):
    with gateway_process(tmp_path, [CLI, "serve", "--backend", "memory"]) as served:
        run(served.target, "put", "-", "k", stdin=b"served")
        assert run(served.target, "get", "k", "-").stdout == b"served"

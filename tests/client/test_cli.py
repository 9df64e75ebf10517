"""The `storagegw` command end to end, in subprocesses, against a real gateway."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from storagegw._crc32c import crc32c
from tests.conftest import REPO, RunningGateway, gateway_process

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


# ---------------------------------------------------------------- on a terminal


class Terminal:
    """The CLI with its stderr on a pseudo-terminal of a given width (stdout is
    not a terminal, as in `storagegw get KEY - > file`); output() reads what it drew."""

    def __init__(self, argv: list[str], columns: int, env: dict[str, str]) -> None:
        self._leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.process = subprocess.Popen(
            argv, stderr=follower, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
        )
        os.close(follower)
        self.shown = b""

    def read_until(self, pattern: bytes, timeout: float = 60) -> None:
        """Read until what the terminal shows matches pattern (bounded wait)."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.shown, re.DOTALL):
            left = deadline - time.monotonic()
            assert left > 0, f"never showed {pattern!r}: {self.shown!r}"
            if select.select([self._leader], [], [], left)[0] and not self._read():
                raise AssertionError(f"ended before showing {pattern!r}: {self.shown!r}")

    def _read(self) -> bool:
        try:
            piece = os.read(self._leader, 65536)
        except OSError:  # EIO: the other end is closed
            return False
        self.shown += piece
        return bool(piece)

    def finish(self) -> tuple[int, str]:
        """Wait for the command; its exit code and everything it drew."""
        while self._read():
            pass
        code = self.process.wait(60)
        os.close(self._leader)
        # The terminal turns \n into \r\n; \r alone is the bar's redraw.
        return code, self.shown.decode(errors="replace").replace("\r\n", "\n")


def _environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    return {**env, **extra}


def _frames(text: str) -> list[str]:
    """Each state of the progress bar: what follows a \r, up to the next \r or \n."""
    return [piece.split("\n", 1)[0] for piece in text.split("\r")[1:]]


@pytest.mark.parametrize(("terminal_columns", "env_columns"), [(60, None), (200, "60")])
def test_progress_bar_fits_a_narrow_terminal(
    memory_gateway, tmp_path, terminal_columns, env_columns
):
    source = tmp_path / "narrow.bin"
    source.write_bytes(os.urandom(8 * 1024 * 1024))
    env = _environment(**({"COLUMNS": env_columns} if env_columns else {}))
    argv = [CLI, "--target", memory_gateway.target, "put", str(source), "some/dir/narrow.bin"]
    code, shown = Terminal(argv, terminal_columns, env).finish()
    assert code == 0, shown
    frames = _frames(shown)
    assert frames, shown
    for frame in frames:
        assert len(frame) < 60, frame  # one column spare: no wrap on any terminal
        # Whole fields only: the line ends with a complete time (ETA or elapsed).
        assert re.search(r"\d+:\d\d$", frame.rstrip()), frame
    assert "100.0%" in frames[-1]
    assert "8.0 MiB / 8.0 MiB" in frames[-1]


def _hold_upload_writes(running: RunningGateway) -> tuple[threading.Event, threading.Event]:
    """Make the default bucket's resumable uploads wait at their first write until
    released (the driver still does all the work), so that a transfer stays in
    flight for as long as the test needs, without sleeps."""
    uploads = running.backend().capabilities.uploads
    assert uploads is not None
    writing, release = threading.Event(), threading.Event()
    resume_upload = uploads.resume_upload

    class HeldWriter:
        def __init__(self, writer: Any) -> None:
            self._writer = writer

        def __getattr__(self, name: str) -> Any:
            return getattr(self._writer, name)

        async def write(self, data: bytes) -> None:
            writing.set()
            await asyncio.to_thread(release.wait, 60)
            await self._writer.write(data)

    async def held(key: str, handle: str) -> Any:
        status, writer = await resume_upload(key, handle)
        return status, None if writer is None else HeldWriter(writer)

    uploads.resume_upload = held  # type: ignore[method-assign]
    return writing, release


def test_ctrl_c_during_put_resume_prints_the_command_that_continues(memory_gateway, tmp_path):
    target = memory_gateway.target
    source = tmp_path / "my disc.iso"  # a name the shell must quote
    data = os.urandom(32 * 1024 * 1024)
    source.write_bytes(data)
    writing, release = _hold_upload_writes(memory_gateway)
    argv = [CLI, "--target", target, "put", "--resume", str(source), "media/my disc.iso"]
    terminal = Terminal(argv, 100, _environment())
    try:
        # The upload id, then the bar with bytes sent: a transfer in progress.
        terminal.read_until(rb"upload id: \S+.*\r.*[1-9][0-9.]* MiB")
        assert writing.wait(60)
        terminal.process.send_signal(signal.SIGINT)
        code, shown = terminal.finish()
    finally:
        release.set()
    assert code == 130, shown
    upload_id = re.search(r"upload id: (\S+)", shown).group(1)
    expected = shlex.join(
        ["storagegw", "--target", target, "put", "--upload-id", upload_id, str(source),
         "media/my disc.iso"]
    )  # fmt: skip
    lines = shown.split("\n")
    # On a line of its own (the bar's line was ended first) ...
    assert f"resume with: {expected}" in lines, shown
    # ... and the last thing shown: the bar was not drawn again.
    assert shown.rstrip().endswith(f"\nresume with: {expected}"), shown

    # The printed command continues the upload.
    words = shlex.split(expected)
    run(target, *words[3:])
    assert run(target, "get", "media/my disc.iso", "-").stdout == data


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

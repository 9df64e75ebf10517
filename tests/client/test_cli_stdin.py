"""`storagegw put -` when the upload ends before stdin does, and the reader
that lets the command stop reading stdin (storagegw._cli_stdin)."""

from __future__ import annotations

import io
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw._cli_stdin import StdinReader, stdin_source
from tests.client.cli_command import CLI


class Pipe:
    """os.pipe() whose write end a test may close early (end_input)."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        self._open = [self.read_end, self.write_end]

    def end_input(self) -> None:
        os.close(self.write_end)
        self._open.remove(self.write_end)

    def close(self) -> None:
        for fd in self._open:
            os.close(fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    opened = Pipe()
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["put", "-", "bad//key"], 6, "invalid key 'bad//key'"),
        (["--bucket", "nosuchbucket", "put", "-", "k"], 3, "bucket 'nosuchbucket'"),
    ],
)
def test_put_refused_while_stdin_stays_open(memory_gateway, pipe, args, code, message):
    """The gateway refuses the upload from its first message while stdin is
    a pipe that stays open with nothing in it: gRPC's thread waits in a read
    of stdin. The command still ends, with the refusal's exit code and
    message alone, not killed by SIGABRT when the interpreter exits."""
    result = subprocess.run(  # the write end stays open until the command is over
        [CLI, "--target", memory_gateway.target, *args],
        stdin=pipe.read_end,
        capture_output=True,
        timeout=60,
        check=False,
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == code, result.stderr.decode()
    assert len(lines) == 1, lines  # no "Fatal Python error" after it
    assert lines[0].startswith(f"storagegw: error: {message}")


def test_reader_reads_what_is_written_until_the_end(pipe):
    reader = StdinReader(pipe.read_end)
    os.write(pipe.write_end, b"abc")
    os.write(pipe.write_end, b"def")
    assert reader.read(4) == b"abcd"
    os.write(pipe.write_end, b"ghi")
    pipe.end_input()
    assert reader.read(10) == b"efghi"  # fewer only at the end of input
    assert reader.read(10) == b""
    reader.close()


def test_reader_reads_all_without_a_size(pipe):
    reader = StdinReader(pipe.read_end)
    os.write(pipe.write_end, b"all of it")
    pipe.end_input()
    assert reader.read() == b"all of it"
    reader.close()


def test_close_ends_a_read_waiting_on_another_thread(pipe):
    """Nothing is ever written: the read can only end through close()."""
    reader = StdinReader(pipe.read_end)
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(reader.read(10))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    reader.close()
    thread.join(timeout=60)  # a bound only: close() wakes the read at once
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ValueError)
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)
    os.write(pipe.write_end, b"late")  # the descriptor is not the reader's to close
    assert os.read(pipe.read_end, 4) == b"late"


def test_stdin_source_reads_a_pipe_through_a_reader_it_closes(pipe):
    with open(pipe.read_end, "rb", closefd=False) as stdin, stdin_source(stdin) as source:
        assert isinstance(source, StdinReader)
    with pytest.raises(ValueError, match="closed"):
        source.read(1)


def test_stdin_source_passes_a_regular_file_as_it_is(tmp_path: Path):
    (tmp_path / "in").write_bytes(b"data")
    with open(tmp_path / "in", "rb") as stdin, stdin_source(stdin) as source:
        assert source is stdin  # seekable: it may go as a resumable upload
        assert source.read(4) == b"data"


def test_stdin_source_passes_an_object_without_a_descriptor():
    stdin = io.BytesIO(b"data")
    with stdin_source(stdin) as source:
        assert source is stdin

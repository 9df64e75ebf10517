"""The `storagegw` command on a terminal: its progress bar, at any width, and
Ctrl-C during a resumable put, which prints the command that continues it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import termios
import threading
import time
from typing import Any

import pytest

from tests.client.cli_command import CLI, run
from tests.conftest import RunningGateway


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

"""A real clamd (Debian's clamav-daemon) for the scanning tests, with a
custom signature database: signatures cannot be downloaded here, and clamd
refuses to start with none.

The database detects the EICAR test file whole (custom.hdb: its MD5 and
size) and anywhere inside other bytes (custom.ndb: a body signature of its
68 bytes). clamd listens on a free TCP port of 127.0.0.1 and on a unix
socket; start() returns once it answers PING.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.servers import free_port

# The standard EICAR anti-virus test file (68 bytes), built here rather than
# stored in the repository, where scanners would flag it.
EICAR = (
    b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$"  # the string is split so that this
    + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"  # source file is not itself a match
)
# What clamd names the signatures (a custom database's get .UNOFFICIAL).
EICAR_BODY_SIGNATURE = "Custom.EICAR.Body.UNOFFICIAL"
# Large enough for the 1 GiB bench; clamd's own ceiling is 4 GB.
STREAM_LIMIT_MB = 2000
# One matcher pass over a stream instead of two. With any file-format parser or
# heuristic on (clamd's default), clamd 1.4 reads a stream of binary data
# twice, the second time to recognise file types embedded in it for those
# parsers: clamscan reports "Data scanned" twice the size, and clamd's CPU per
# GiB of the bench's data falls from about 26 to 12 s with all of them off (see
# README, Performance: Malware scanning). The custom database has only the
# EICAR signatures, which the single pass finds whole or anywhere in a stream;
# a production clamd with the official database keeps its parsers (archives,
# PE, mail...), or it cannot find malware inside them. No clean-file cache
# either: it costs an MD5 of every stream (about 2 CPU s/GiB), and the tests
# and the bench send each stream once.
SINGLE_PASS_CONFIG = (
    "ScanPE no",
    "ScanELF no",
    "ScanOLE2 no",
    "ScanPDF no",
    "ScanSWF no",
    "ScanHTML no",
    "ScanXMLDOCS no",
    "ScanHWP3 no",
    "ScanOneNote no",
    "ScanArchive no",
    "ScanMail no",
    "ScanImage no",
    "ScanImageFuzzyHash no",
    "HeuristicAlerts no",
    "DisableCache yes",
)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: clamd gets SIGTERM if the test session dies without stopping it
    (killed by a timeout, say), rather than living on."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def write_database(directory: Path) -> None:
    """The custom signatures: EICAR whole (MD5) and embedded (body)."""
    directory.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(EICAR).hexdigest()  # noqa: S324 (the .hdb format is MD5)
    (directory / "custom.hdb").write_text(f"{md5}:{len(EICAR)}:Custom.EICAR.Test\n")
    (directory / "custom.ndb").write_text(f"Custom.EICAR.Body:0:*:{EICAR.hex()}\n")


class ClamdServer:
    """clamd as a child process of the test session; stop() ends it."""

    def __init__(self, stream_limit_mb: int = STREAM_LIMIT_MB, extra_config: str = "") -> None:
        """extra_config: more clamd.conf lines."""
        self.extra_config = extra_config
        self.port = 0
        self.socket_path = ""
        self.stream_limit_mb = stream_limit_mb
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("clamd") is not None

    @property
    def tcp_address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def unix_address(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout: float = 60) -> ClamdServer:
        if self._proc is not None:
            raise RuntimeError("clamd already started")
        self._dir = Path(tempfile.mkdtemp(prefix="clamd-"))
        write_database(self._dir / "db")
        self.port = free_port()
        self.socket_path = str(self._dir / "clamd.sock")
        limit = f"{self.stream_limit_mb}M"
        conf = self._dir / "clamd.conf"
        conf.write_text(
            "\n".join(
                [
                    f"DatabaseDirectory {self._dir / 'db'}",
                    f"TCPSocket {self.port}",
                    "TCPAddr 127.0.0.1",
                    f"LocalSocket {self.socket_path}",
                    "Foreground yes",
                    f"TemporaryDirectory {self._dir}",
                    f"StreamMaxLength {limit}",
                    # Scan all of a large stream: past these clamd stops
                    # looking and answers OK.
                    f"MaxScanSize {limit}",
                    f"MaxFileSize {limit}",
                    *SINGLE_PASS_CONFIG,
                    self.extra_config,
                    "",
                ]
            )
        )
        self._log = tempfile.TemporaryFile(prefix="clamd-")  # noqa: SIM115 (closed in stop())
        self._proc = subprocess.Popen(
            ["clamd", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready(timeout)
        except Exception as exc:
            output = self._output()
            self.stop()
            raise RuntimeError(f"clamd did not start: {exc}\n{output}") from exc
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until clamd answers PING (it binds only once its database is loaded)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"clamd exited with code {self._proc.returncode}")
            if self.ping():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"clamd did not answer PING within {timeout:.0f} s")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"zPING\0")
                return sock.recv(16) == b"PONG\0"
        except OSError:
            return False

    def kill(self) -> None:
        """Kill clamd at once (SIGKILL), as a crash would: a scan in
        progress is cut off. start() may be called again afterwards."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        self._cleanup()

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:].decode(errors="replace")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> ClamdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

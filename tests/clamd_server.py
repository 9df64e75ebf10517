"""A real clamd (Debian's clamav-daemon) for the scanning tests, with a
custom signature database: signatures cannot be downloaded here, and clamd
refuses to start with none.

The database detects the EICAR test file whole (custom.hdb: its MD5 and
size) and anywhere inside other bytes (custom.ndb: a body signature of its
68 bytes). clamd listens on a free TCP port of 127.0.0.1 and on a unix
socket; start() returns once it answers PING.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.child_server import ChildServer
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


def write_database(directory: Path) -> None:
    """The custom signatures: EICAR whole (MD5) and embedded (body)."""
    directory.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(EICAR).hexdigest()  # noqa: S324 (the .hdb format is MD5)
    (directory / "custom.hdb").write_text(f"{md5}:{len(EICAR)}:Custom.EICAR.Test\n")
    (directory / "custom.ndb").write_text(f"Custom.EICAR.Body:0:*:{EICAR.hex()}\n")


class ClamdServer(ChildServer):
    """clamd as a child process of the test session (it dies with the
    session); stop() ends it."""

    def __init__(self, stream_limit_mb: int = STREAM_LIMIT_MB, extra_config: str = "") -> None:
        """extra_config: more clamd.conf lines."""
        self.extra_config = extra_config
        self.port = 0
        self.socket_path = ""
        self.stream_limit_mb = stream_limit_mb
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

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
        """Returns once clamd answers PING (it binds only once its database
        is loaded)."""
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
        self._spawn("clamd", ["clamd", "-c", str(conf)], self.ping, timeout, die_with_session=True)
        return self

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
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self.stop()  # clamd is gone: this only tidies up

    def stop(self) -> None:
        super().stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> ClamdServer:
        return self.start()

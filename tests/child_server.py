"""A server run as a child process of the test session, for tests/moto_server.py,
tests/ceph_rgw.py, tests/fake_gcs_server.py and tests/clamd_server.py: started with its
output in a log file, ready once it answers, stopped politely first."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def answers_http(url: str) -> bool:
    """Whether a server at ``url`` sends any HTTP response (even an error status)."""
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (http://127.0.0.1 only)
            return True
    except urllib.error.HTTPError:
        return True  # it answered: up
    except OSError:
        return False  # connection refused / reset: not listening yet


def _wait_ready(answers: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``answers`` until it is true, the process exits, or ``timeout``
    seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode}")
        if answers():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        time.sleep(0.05)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the test session dies without stopping
    it (killed by a timeout, say), rather than living on."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildServer:
    """A server run as a child process of the test session (its output in a log
    file); stop() ends it, politely first."""

    _proc: subprocess.Popen[bytes] | None = None
    _log: Any = None

    def _spawn(
        self,
        name: str,
        command: list[str],
        ready: Callable[[], bool],
        timeout: float,
        *,
        die_with_session: bool = False,
    ) -> None:
        """Start command, its output to a file (a full pipe nobody reads would
        block the server), and wait until ready() is true. die_with_session:
        the server gets SIGTERM when the test session's process dies."""
        self._log = tempfile.TemporaryFile(prefix="server-")  # noqa: SIM115 (closed in stop())
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if die_with_session else None,
        )
        try:
            _wait_ready(ready, timeout, self._proc)
        except Exception as exc:
            output = self._output()
            self.stop()
            raise RuntimeError(f"{name} did not start: {exc}\n{output}") from exc

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read()[-4000:].decode(errors="replace"))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc: object) -> None:
        self.stop()

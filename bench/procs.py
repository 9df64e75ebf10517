"""Server processes: start, wait until ready, stop; peak RSS; py-spy profiles."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

from storagegw._common import RETRY_SERVICE_CONFIG

_PR_SET_PDEATHSIG = 1
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: the child gets SIGTERM if the driver dies without cleaning up.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tune_own_malloc() -> bool:
    """Keep freed 1 MiB buffers in this (driver) process instead of giving them
    back to the OS and faulting them in again for the next message: glibc's
    default costs the client more than the raw server spends per MiB. Only the
    driver is tuned (it raises the ceiling for both servers alike)."""
    try:
        libc = ctypes.CDLL(None)
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 16 * 1024 * 1024)
            and libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024 * 1024)
        )
    except (OSError, AttributeError):
        return False


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Processes:
    """Everything the bench started; stop_all() ends each one (terminate, then kill)."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self, argv: list[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the driver, which stops them in order
                preexec_fn=_die_with_parent,
            )
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(5)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            with contextlib.suppress(Exception):
                self.stop(process)
        self.started.clear()


def wait_ready(
    server: Server,
    options: list[tuple[str, object]],
    timeout: float = 30.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Wait until the server accepts a gRPC connection (over TLS with
    credentials); fail if it exits first."""
    deadline = time.monotonic() + timeout
    channel = (
        grpc.insecure_channel(server.address, options=options)
        if credentials is None
        else grpc.secure_channel(server.address, credentials, options=options)
    )
    with channel:
        ready = grpc.channel_ready_future(channel)
        while True:
            try:
                ready.result(timeout=0.2)
                return
            except grpc.FutureTimeoutError:
                pass
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s")


class PeakRss:
    """Peak RSS of one process over a workload.

    Preferred: write "5" to /proc/PID/clear_refs (resets VmHWM to the current
    RSS), then read VmHWM from /proc/PID/status afterwards. Fallback: sample
    psutil RSS every 50 ms in a thread.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._status = Path(f"/proc/{pid}/status")
        self._clear_refs = Path(f"/proc/{pid}/clear_refs")
        self.method = "clear_refs+VmHWM" if self._reset_hwm() else "psutil sampling every 50 ms"
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _reset_hwm(self) -> bool:
        try:
            self._clear_refs.write_text("5")
            return self._read_hwm() is not None
        except OSError:
            return False

    def _read_hwm(self) -> int | None:
        match = re.search(r"^VmHWM:\s+(\d+) kB", self._status.read_text(), re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None

    def _sample(self) -> None:
        process = psutil.Process(self.pid)
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self._peak = max(self._peak, process.memory_info().rss)
            self._stop.wait(0.05)

    def start(self) -> None:
        if self.method.startswith("clear_refs"):
            self._reset_hwm()
            return
        self._peak = psutil.Process(self.pid).memory_info().rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """Peak RSS in bytes since start()."""
        if self.method.startswith("clear_refs"):
            return self._read_hwm() or 0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self._peak


def find_py_spy() -> str | None:
    """py-spy from $BENCH_PY_SPY, PATH, or next to this Python."""
    candidates = [os.environ.get("BENCH_PY_SPY", ""), shutil.which("py-spy") or ""]
    candidates.append(str(Path(sys.executable).parent / "py-spy"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Profiler:
    """py-spy record attached to the gateway around each gateway workload."""

    def __init__(self, py_spy: str, pid: int, directory: Path, processes: Processes) -> None:
        self.py_spy, self.pid, self.directory, self.processes = py_spy, pid, directory, processes
        self._current: tuple[subprocess.Popen[bytes], Path] | None = None
        self.outputs: dict[str, Path] = {}

    def start(self, name: str) -> None:
        path = self.directory / f"profile-{name}.txt"
        argv = [self.py_spy, "record", "--pid", str(self.pid), "--format", "raw"]
        argv += ["--rate", "200", "--nonblocking", "--output", str(path)]
        process = self.processes.spawn(argv, dict(os.environ), path.with_suffix(".log"))
        self._current = (process, path)
        self.outputs[name] = path
        time.sleep(0.5)  # let py-spy attach before the workload starts

    def stop(self) -> None:
        if self._current is None:
            return
        process, _ = self._current
        self._current = None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                self.processes.stop(process)
        self.processes.started.remove(process)


# Frames on every stack of their thread: left out of the inclusive list.
_BOILERPLATE = (
    "(<frozen runpy>)",
    "(asyncio/runners.py)",
    "(asyncio/base_events.py)",
    "(threading.py)",
    "(gateway/__main__.py)",
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _function(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    return f"{match['func']} ({match['file']})" if match else frame.strip()


def summarize_profile(path: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Top functions of a py-spy raw (collapsed) profile: self and inclusive share."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        # The first frame is the thread ("process N:..." / thread name) when py-spy adds it.
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if not name.endswith(_BOILERPLATE):
                inclusive[name] += count
    if not total:
        return {}
    return {
        "self": [(name, 100 * n / total) for name, n in own.most_common(top)],
        "inclusive": [(name, 100 * n / total) for name, n in inclusive.most_common(top)],
        "samples": [("total", float(total))],
    }


def retry_everywhere() -> str:
    """The bundled client's gRPC retry policy, for every method of any service
    (an empty name in a service config's method list means all methods)."""
    config = json.loads(RETRY_SERVICE_CONFIG)
    for method in config["methodConfig"]:
        method["name"] = [{}]
    return json.dumps(config)

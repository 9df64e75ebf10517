"""GATEWAY_WORKERS=2 on the local backend: `python -m gateway` as a real
supervisor with two worker processes sharing one gRPC port.

Which worker served a call is read from its access line, which carries the
worker's pid; a channel keeps its one connection, so every call of a channel
goes to the worker that accepted it, and channels pinned to two different
pids race each other across processes.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import gateway_process
from tests.rpc.resumable_calls import query, segment, start
from tests.rpc_calls import call_error, error_reason, get, put

MiB = 1024 * 1024
LINE_WAIT = 60  # seconds: a deadline for a line that should come, not a pause
_READY = re.compile(
    r"(\d+) workers serving gRPC on [^ ]+:(\d+) and signed URLs on [^ ]+:(\d+) \(pids ([\d, ]+)\)"
)
_AGAIN = re.compile(r"worker \d+ serving again \(pid (\d+)\)")

Stub = storage_pb2_grpc.StorageServiceStub


@dataclass
class Workers:
    """The supervisor's process, its ports, and its (and its workers') log lines."""

    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    lines: queue.Queue[dict[str, Any]]
    # The workers' pids, as the supervisor names them.
    pids: set[int] = field(default_factory=set)
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def next_line(self, test: Any) -> dict[str, Any]:
        """The first line from now on that satisfies test (waits for it)."""
        while True:
            line = self.lines.get(timeout=LINE_WAIT)
            self.seen.append(line)
            if test(line):
                return line

    def pid_of_call(self, method: str, key: str) -> int:
        """The pid of the worker whose access line says it served method on key."""
        line = self.next_line(lambda e: e.get("rpc_method") == method and e.get("key") == key)
        return int(line["pid"])


def _read_lines(stream: Any, into: queue.Queue[dict[str, Any]]) -> None:
    for text in stream:
        try:
            into.put(json.loads(text))
        except json.JSONDecodeError:
            into.put({"message": text})


@contextmanager
def workers(data_dir: Path, **env: str) -> Iterator[Workers]:
    """`python -m gateway` with two workers; ready when the supervisor says all serve."""
    settings = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))},
        "GATEWAY_WORKERS": "2",
        "GATEWAY_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
        "STORAGE_BASE_PATH": str(data_dir),
        "STORAGE_URL_SECRET": "workers-test-url-secret",
        "GATEWAY_LOG_FORMAT": "json",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"],
        env=settings,
        cwd=data_dir,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    running = Workers(process, 0, 0, lines)
    try:
        ready = running.next_line(lambda e: _READY.search(e.get("message", "")) is not None)
        match = _READY.search(ready["message"])
        assert match is not None
        assert match.group(1) == "2"
        running.grpc_port, running.http_port = int(match.group(2)), int(match.group(3))
        running.pids = {int(pid) for pid in match.group(4).split(", ")}
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(60)
        reader.join(10)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Workers]:
    with workers(tmp_path) as gateway:
        yield gateway


@contextmanager
def pinned_stubs(gateway: Workers) -> Iterator[dict[int, Stub]]:
    """One stub per worker pid, each on a channel whose connection that
    worker accepted (found by opening channels until both pids answered)."""
    stubs: dict[int, Stub] = {}
    channels = []
    try:
        for n in range(64):  # the kernel picks per connection: all on one is 2**-63
            # Its own connection: channels to one target share one by default.
            channel = grpc.insecure_channel(
                gateway.target, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            channels.append(channel)
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            key = f"probe/{n}"
            call_error(stub.Head, pb.HeadRequest(key=key))  # NOT_FOUND, and an access line
            stubs.setdefault(gateway.pid_of_call("Head", key), stub)
            if len(stubs) == 2:
                break
        yield stubs
    finally:
        for channel in channels:
            channel.close()


def test_two_workers_serve_one_port(running: Workers) -> None:
    with pinned_stubs(running) as stubs:
        assert set(stubs) == running.pids
        assert running.process.pid not in stubs
        first, second = stubs.values()
        # What one worker stored, the other serves.
        put(first, "shared.txt", b"written by one worker")
        assert get(second, key="shared.txt")[1] == b"written by one worker"


def _racing_put(
    barrier: threading.Barrier, stub: Stub, key: str, data: bytes, conditions: pb.Preconditions
) -> object:
    """Once both racers are ready: the stored ObjectInfo, or the (code,
    reason) the Put failed with."""
    barrier.wait()
    try:
        return put(stub, key, data, spec=pb.PutSpec(key=key, preconditions=conditions))
    except grpc.RpcError as error:
        return error_reason(error)


def test_exactly_one_of_two_racing_conditional_puts_wins_across_workers(
    running: Workers,
) -> None:
    key = "contended.bin"
    refused = (grpc.StatusCode.FAILED_PRECONDITION, "PRECONDITION_FAILED")
    with pinned_stubs(running) as stubs, ThreadPoolExecutor(2) as pool:
        first, second = stubs.values()
        current = put(first, key, b"round 0")
        for round_ in range(1, 41):
            # Alternately on the generation and on the etag of what is there.
            if round_ % 2:
                conditions = pb.Preconditions(if_generation_match=current.generation)
            else:
                conditions = pb.Preconditions(if_match=current.etag)
            bodies = [f"round {round_} by {n} ".encode() * 4096 for n in (1, 2)]
            barrier = threading.Barrier(2)
            racers = [
                pool.submit(_racing_put, barrier, stub, key, body, conditions)
                for stub, body in zip((first, second), bodies, strict=True)
            ]
            outcomes = [racer.result() for racer in racers]
            won = [(o, b) for o, b in zip(outcomes, bodies, strict=True) if o != refused]
            assert len(won) == 1, f"round {round_}: {outcomes}"
            assert outcomes.count(refused) == 1, f"round {round_}: {outcomes}"
            winner, body = won[0]
            assert isinstance(winner, pb.ObjectInfo)
            assert winner.generation > current.generation
            for stub in (first, second):
                responses, data = get(stub, key=key)
                assert data == body
                assert responses[0].object.generation == winner.generation
            current = winner


def test_a_second_writer_of_an_upload_on_another_worker_is_busy(running: Workers) -> None:
    # More than the local backend's persistence unit (32 MiB): the first
    # stream is known to hold the upload once its first checkpoint is in.
    data = os.urandom(40 * MiB)
    with pinned_stubs(running) as stubs:
        first, second = stubs.values()
        upload_id = start(first, "busy.bin")
        release = threading.Event()

        def held_open() -> Iterator[pb.PutRequest]:
            yield from segment(upload_id, data[: 39 * MiB], 0, finish=False)
            release.wait(120)

        writing = first.Put.future(held_open())
        try:
            while query(second, upload_id).persisted_size == 0:
                assert not writing.done(), "the first stream ended before persisting"
            code, reason, _ = call_error(second.Put, segment(upload_id, data, 0, finish=True))
            assert (code, reason) == (grpc.StatusCode.ABORTED, "UPLOAD_BUSY")
        finally:
            release.set()
        # The first stream ends without finishing (its segment suspended, its
        # lock released); then the other worker continues the upload.
        assert not writing.result(timeout=120).HasField("object")
        persisted = query(second, upload_id).persisted_size
        response = second.Put(segment(upload_id, data, persisted, finish=True))
        assert response.object.size == len(data)
        assert get(first, key="busy.bin")[1] == data


def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(running: Workers) -> None:
    data = os.urandom(40 * MiB)
    with pinned_stubs(running) as stubs:
        (pid, stub), (_, other) = stubs.items()
        upload_id = start(stub, "drained.bin")
        release = threading.Event()

        def held_open() -> Iterator[pb.PutRequest]:
            # 34 of 40 MiB, then a pause: the first 32 MiB get persisted.
            for n, message in enumerate(segment(upload_id, data, 0, finish=True)):
                if n == 35:
                    release.wait(60)
                yield message

        in_flight = stub.Put.future(held_open())
        try:
            while query(other, upload_id).persisted_size == 0:  # the stream is in flight
                assert not in_flight.done(), "the stream ended before persisting"
            running.process.send_signal(signal.SIGTERM)
            running.next_line(lambda e: e.get("pid") == pid and "shutting down" in e["message"])
        finally:
            release.set()
        # The stream in flight when the signal came finishes and commits.
        assert in_flight.result(60).object.size == len(data)
    assert running.process.wait(60) == 0
    stopped = {e["pid"] for e in running.seen if e.get("message") == "stopped" and "pid" in e}
    while stopped != running.pids:
        line = running.next_line(lambda e: e.get("message") == "stopped" and "pid" in e)
        stopped.add(int(line["pid"]))
    assert running.next_line(lambda e: "pid" not in e)["message"] == "stopped"


def test_a_worker_that_dies_is_replaced(running: Workers) -> None:
    killed = min(running.pids)
    os.kill(killed, signal.SIGKILL)
    line = running.next_line(lambda e: _AGAIN.search(e.get("message", "")) is not None)
    match = _AGAIN.search(line["message"])
    assert match is not None
    replaced = (running.pids - {killed}) | {int(match.group(1))}
    assert killed not in replaced
    assert len(replaced) == 2
    with pinned_stubs(running) as stubs:
        assert set(stubs) == replaced


def test_memory_buckets_cannot_be_shared_by_workers(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))},
        "STORAGE_BACKEND": "memory",
        "GATEWAY_WORKERS": "2",
        "GATEWAY_LOG_FORMAT": "text",
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "GATEWAY_WORKERS" in result.stderr
    assert "memory backend" in result.stderr
    assert "use 1 worker" in result.stderr


def _run_to_exit(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))},
        "GATEWAY_WORKERS": "2",
        "GATEWAY_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
        "STORAGE_BASE_PATH": str(tmp_path),
        "GATEWAY_LOG_FORMAT": "text",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=settings,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_port_in_use_stops_the_start_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = _run_to_exit(tmp_path, GATEWAY_HTTP_LISTEN=address)
    assert result.returncode == 1
    assert f"GATEWAY_HTTP_LISTEN: cannot listen on {address}" in result.stderr


@contextmanager
def _taken_port_after_a_free_one() -> Iterator[int]:
    """A free port whose next one this holds, listening. Other test processes (pytest-xdist
    workers) hold ports too, so a free port's next may be theirs: try a few free ports."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as taken:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            first.close()  # free for worker 0
            try:
                taken.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            taken.listen()
            yield port
            return
    pytest.skip("no free port had a free next one in 50 tries")


def test_a_worker_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    # Worker I serves metrics on the port plus I: worker 1's is taken.
    with _taken_port_after_a_free_one() as port:
        result = _run_to_exit(tmp_path, GATEWAY_METRICS_LISTEN=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"GATEWAY_METRICS_LISTEN: cannot listen on 127.0.0.1:{port + 1}" in result.stderr
    assert "worker 1 stopped before serving" in result.stderr
    assert "workers serving" not in result.stderr


def test_workers_stop_when_the_supervisor_is_killed(running: Workers) -> None:
    running.process.kill()
    running.process.wait(60)
    stopped: set[int] = set()
    while stopped != running.pids:  # the workers still write to the same stderr
        line = running.next_line(lambda e: e.get("message") == "stopped" and "pid" in e)
        stopped.add(int(line["pid"]))
    gone = [e["pid"] for e in running.seen if "supervisor is gone" in e.get("message", "")]
    assert sorted(gone) == sorted(running.pids)


def test_one_worker_is_the_plain_gateway(tmp_path: Path) -> None:
    with gateway_process(tmp_path, GATEWAY_WORKERS="1") as process:
        assert psutil.Process(process.process.pid).children() == []
        served = [json.loads(line) for line in process.log_lines if "serving gRPC" in line]
        assert served
        assert "pid" not in served[0]
        assert "worker" not in served[0]

"""The gateway as a process: default start, logs, bad configuration, graceful shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storagegw.v1 import storage_pb2 as pb
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import gateway_process
from tests.rpc_calls import CHUNK, crc, put

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))}


def records(process):
    return [json.loads(line) for line in process.log_lines if line.startswith("{")]


def test_default_start_uses_local_disk_under_data(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("STORAGE_", "GATEWAY_")):
            monkeypatch.delenv(name)
    with gateway_process(tmp_path, STORAGE_BASE_PATH="") as process:
        with grpc.insecure_channel(process.target) as channel:
            put(storage_pb2_grpc.StorageServiceStub(channel), "hello.txt", b"hi")
        messages = [r["message"] for r in records(process)]
    assert any(
        "no storage configured: using the local backend under" in m and str(tmp_path / "data") in m
        for m in messages
    ), messages
    stored = list((tmp_path / "data" / "default" / "objects").iterdir())
    assert [p.name for p in stored] == ["hello.txt"]
    secret = tmp_path / "data" / ".url-secret"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_one_json_log_line_per_rpc(tmp_path):
    with gateway_process(tmp_path, STORAGE_BACKEND="memory") as process:
        with grpc.insecure_channel(process.target) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            put(stub, "logs/a.bin", b"x" * 1000)
            with contextlib.suppress(grpc.RpcError):
                stub.Head(pb.HeadRequest(key="logs/missing"))
        process.process.send_signal(signal.SIGTERM)
        process.process.wait(30)
    calls = [r for r in records(process) if "rpc_method" in r]
    assert [(c["rpc_method"], c["key"], c["status"]) for c in calls] == [
        ("Put", "logs/a.bin", "OK"),
        ("Head", "logs/missing", "NOT_FOUND"),
    ]
    assert calls[0]["bytes"] == 1000
    assert calls[0]["bucket"] == "default"  # the default bucket, by name
    assert all(isinstance(c["duration_ms"], float) for c in calls)


def run_with(tmp_path, **env):
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={**CLEAN_ENV, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_configuration_stops_the_start_naming_the_setting(tmp_path):
    cases = {
        "STORAGE_BACKEND": "floppy",
        "GATEWAY_LISTEN": "nonsense",
        "GATEWAY_CHUNK_SIZE": "64MiB",
        "STORAGE_URL_SECRET": "short",
        "STORAGE_URL_EXPIRATION": "-5",
        "GATEWAY_CONFIG": str(tmp_path / "missing.toml"),
    }
    for name, value in cases.items():
        result = run_with(tmp_path, **{name: value})
        assert result.returncode == 2, (name, result.stderr)
        assert f"configuration error: {name}" in result.stderr, result.stderr
        assert not (tmp_path / "data").exists()


def test_port_in_use_is_reported(tmp_path):
    with gateway_process(tmp_path, STORAGE_BACKEND="memory") as first:
        result = run_with(
            tmp_path,
            STORAGE_BACKEND="memory",
            GATEWAY_LISTEN=first.target,
            GATEWAY_HTTP_LISTEN="127.0.0.1:0",
            GATEWAY_LOG_FORMAT="text",
        )
    assert result.returncode == 1
    assert "GATEWAY_LISTEN" in result.stderr


def test_sigterm_drains_in_flight_streams_and_refuses_new_calls(tmp_path):
    with gateway_process(tmp_path, STORAGE_BACKEND="memory", GATEWAY_SHUTDOWN_GRACE="60") as gw:
        channel = grpc.insecure_channel(gw.target)
        stub = storage_pb2_grpc.StorageServiceStub(channel)
        big = os.urandom(CHUNK) * 48
        put(stub, "big", big)

        # An in-flight download: its first message has arrived.
        download = stub.Get(pb.GetRequest(key="big"))
        received = [next(download).chunk.content]

        # An in-flight upload: started, then held open.
        go_on = threading.Event()

        def upload():
            yield pb.PutRequest(spec=pb.PutSpec(key="late"))
            yield pb.PutRequest(chunk=pb.ChecksummedData(content=b"a" * 10, crc32c=crc(b"a" * 10)))
            go_on.wait(60)
            yield pb.PutRequest(chunk=pb.ChecksummedData(content=b"b" * 10), finish_write=True)

        upload_call = stub.Put.future(upload())
        # Calls on one connection reach the server in order: once this answers,
        # the server has the Put in hand.
        stub.List(pb.ListRequest())

        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        statuses = iter(watch)
        assert next(statuses).status == health_pb2.HealthCheckResponse.SERVING

        gw.process.send_signal(signal.SIGTERM)
        assert next(statuses).status == health_pb2.HealthCheckResponse.NOT_SERVING

        # New calls are refused while the old ones finish.
        with grpc.insecure_channel(gw.target) as fresh:
            fresh_stub = storage_pb2_grpc.StorageServiceStub(fresh)
            try:
                fresh_stub.Head(pb.HeadRequest(key="big"), timeout=10)
                refused = None
            except grpc.RpcError as error:
                refused = error.code()
        assert refused == grpc.StatusCode.UNAVAILABLE

        received += [r.chunk.content for r in download]
        assert b"".join(received) == big
        go_on.set()
        assert upload_call.result(timeout=60).object.size == 20
        assert gw.process.wait(60) == 0
        channel.close()
    assert any("shutting down" in r["message"] for r in records(gw))


def test_a_serving_gateway_freezes_what_it_started_with(tmp_path):
    # The process that serves settles its collector once it listens
    # (gateway/core/collector.py); a Put and a Get still work afterwards.
    with gateway_process(tmp_path, STORAGE_BACKEND="memory", GATEWAY_LOG_LEVEL="DEBUG") as process:
        with grpc.insecure_channel(process.target) as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            put(stub, "settled.bin", b"s" * 1000)
            got = b"".join(r.chunk.content for r in stub.Get(pb.GetRequest(key="settled.bin")))
        process.process.send_signal(signal.SIGTERM)
        process.process.wait(30)
    assert got == b"s" * 1000
    settled = [
        m for m in (r["message"] for r in records(process)) if m.startswith("garbage collector:")
    ]
    assert len(settled) == 1, settled
    frozen = int(settled[0].split()[2])
    # The modules, the gRPC server and the backend's SDK: tens of thousands.
    assert frozen > 10_000, settled
    assert "collected every 5000 allocations" in settled[0]

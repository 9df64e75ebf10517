"""Health checking and reflection, driven by the real grpcurl and buf curl binaries."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storagegw.v1 import storage_pb2 as pb
from tests.conftest import REPO
from tests.rpc_calls import get, put

GRPCURL = shutil.which("grpcurl", path=str(Path(REPO, ".venv", "bin"))) or "grpcurl"
BUF = str(REPO / "node_modules" / ".bin" / "buf")
SERVICE = "storagegw.v1.StorageService"


def grpcurl(target: str, *args: str, data: str | None = None) -> str:
    command = [GRPCURL, "-plaintext"]
    if data is not None:
        command += ["-d", data]
    result = subprocess.run(
        [*command, target, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def buf_curl(target: str, method: str, data: str) -> dict:
    result = subprocess.run(
        [
            BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
            f"http://{target}/{SERVICE}/{method}", "-d", "@-",
        ],
        input=data, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_grpcurl_lists_and_describes_every_rpc(local_gateway):
    services = grpcurl(local_gateway.target, "list").split()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    description = grpcurl(local_gateway.target, "describe", SERVICE)
    for rpc in ("Put", "Get", "Head", "Delete", "List", "SignUrl", "Copy"):
        assert f"rpc {rpc} (" in description
    assert "rpc Put ( stream .storagegw.v1.PutRequest )" in description
    message = grpcurl(local_gateway.target, "describe", "storagegw.v1.PutSpec")
    assert "expected_checksums" in message


def test_grpcurl_put_head_get(local_gateway):
    target = local_gateway.target
    chunk = base64.b64encode(b"hello from grpcurl").decode()
    stream = (
        '{"spec": {"key": "cli/hello.txt", "content_type": "text/plain"}}'
        f'{{"chunk": {{"content": "{chunk}"}}, "finish_write": true}}'
    )
    put_reply = json.loads(grpcurl(target, f"{SERVICE}/Put", data=stream))
    assert put_reply["object"]["size"] == "18"
    head = json.loads(grpcurl(target, f"{SERVICE}/Head", data='{"key": "cli/hello.txt"}'))
    assert head["object"]["content_type"] == "text/plain"  # grpcurl keeps proto names
    assert head["object"]["etag"] == put_reply["object"]["etag"]
    got = grpcurl(target, f"{SERVICE}/Get", data='{"key": "cli/hello.txt"}')
    first = json.loads(got[: got.index("\n}\n") + 2])
    assert base64.b64decode(first["chunk"]["content"]) == b"hello from grpcurl"


def test_grpcurl_health_check(local_gateway):
    reply = json.loads(grpcurl(local_gateway.target, "grpc.health.v1.Health/Check"))
    assert reply == {"status": "SERVING"}
    per_service = json.dumps({"service": SERVICE})
    assert json.loads(grpcurl(local_gateway.target, "grpc.health.v1.Health/Check",
                              data=per_service)) == {"status": "SERVING"}  # fmt: skip


def test_buf_curl_put_and_head_through_reflection(memory_gateway):
    target = memory_gateway.target
    chunk = base64.b64encode(b"buf!").decode()
    stream = json.dumps({"spec": {"key": "b.txt"}}) + json.dumps(
        {"chunk": {"content": chunk}, "finishWrite": True}
    )
    reply = buf_curl(target, "Put", stream)
    assert reply["object"]["size"] == "4"
    head = buf_curl(target, "Head", json.dumps({"key": "b.txt"}))
    assert head["object"]["key"] == "b.txt"


def test_buf_curl_lists_services_and_methods(memory_gateway):
    base = f"http://{memory_gateway.target}"
    common = [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    services = subprocess.run(
        [*common, "--list-services", base],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert services.returncode == 0, services.stderr
    assert SERVICE in services.stdout.split()
    methods = subprocess.run(
        [*common, "--list-methods", base],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert methods.returncode == 0, methods.stderr
    listed = set(methods.stdout.split())
    for rpc in ("Put", "Get", "Head", "Delete", "List", "SignUrl", "Copy"):
        assert f"{SERVICE}/{rpc}" in listed


def test_buf_curl_reports_rich_errors(memory_gateway):
    result = subprocess.run(
        [
            BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
            f"http://{memory_gateway.target}/{SERVICE}/Head", "-d", '{"key": "missing"}',
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 5 * 8  # buf curl: exit code = status code (NOT_FOUND) x 8
    error = json.loads(result.stderr)
    assert error["code"] == "not_found"
    (detail,) = error["details"]
    assert detail["type"] == "google.rpc.ErrorInfo"
    info = error_details_pb2.ErrorInfo.FromString(base64.b64decode(detail["value"]))
    assert (info.reason, info.domain) == ("OBJECT_NOT_FOUND", "storagegw")


def _health(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service)).status


def test_health_follows_the_backend_probe(local_gateway):
    target = local_gateway.target
    bucket_service = f"{SERVICE}/default"
    assert _health(target, bucket_service) == health_pb2.HealthCheckResponse.SERVING
    objects = local_gateway.data_dir / "default" / "objects"
    objects.rename(objects.with_name("moved"))
    local_gateway.run(local_gateway.gateway._probe_all())
    assert _health(target) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(target, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(target, bucket_service) == health_pb2.HealthCheckResponse.NOT_SERVING
    objects.with_name("moved").rename(objects)
    local_gateway.run(local_gateway.gateway._probe_all())
    assert _health(target) == health_pb2.HealthCheckResponse.SERVING


def test_periodic_probe_drives_health_watch(gateway_factory, tmp_path):
    running = gateway_factory(STORAGE_BACKEND="local", GATEWAY_HEALTH_INTERVAL="0.05")
    objects = tmp_path / "default" / "objects"
    with grpc.insecure_channel(running.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        statuses = iter(watch)
        assert next(statuses).status == health_pb2.HealthCheckResponse.SERVING
        objects.rename(objects.with_name("gone"))
        assert next(statuses).status == health_pb2.HealthCheckResponse.NOT_SERVING
        objects.with_name("gone").rename(objects)
        assert next(statuses).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024])
def test_generated_stub_works_against_the_gateway(stub, size):
    data = bytes(size)
    assert put(stub, "plain", data).size == size
    assert get(stub, "plain")[1] == data
    assert stub.List(pb.ListRequest()).objects[0].key == "plain"


# ---------------------------------------------------------------- the Makefile


def _dry_run(*targets: str) -> list[str]:
    """The commands `make` would run for targets from a clean state (-B: nothing is
    up to date, as on a fresh clone), without running them."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *targets],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_run_installs_only_what_serving_needs():
    installs = [line for line in _dry_run("run") if "pip install" in line]
    assert installs, "make run installs nothing on a fresh clone?"
    assert not [line for line in installs if "dev]" in line], installs
    assert any("-e '.[grpcurl]'" in line for line in installs), installs
    # The development tools come with `make setup` (and so `make test`).
    assert any("-e '.[dev]'" in line for line in _dry_run("setup") if "pip install" in line)


def test_make_bench_sets_itself_up_and_keeps_its_peers_out_of_the_runtime():
    commands = _dry_run("bench")
    assert any("-e '.[dev]'" in line for line in commands if "pip install" in line), commands
    assert any("scripts/install-test-servers.sh" in line for line in commands), commands
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    bench = project["optional-dependencies"]["bench"]
    assert {"fastapi", "uvicorn[standard]", "httpx"} <= {spec.split("=")[0] for spec in bench}
    assert "storagegw[bench]" in project["optional-dependencies"]["dev"]
    runtime = " ".join(project["dependencies"] + project["optional-dependencies"]["grpcurl"])
    assert "fastapi" not in runtime
    assert "uvicorn" not in runtime


def test_installing_buf_leaves_the_committed_lock_alone(tmp_path):
    for name in ("Makefile", "package.json", "package-lock.json"):
        shutil.copy(REPO / name, tmp_path / name)
    result = subprocess.run(
        ["make", "node_modules/.bin/buf"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "node_modules" / ".bin" / "buf").exists()
    committed = (REPO / "package-lock.json").read_bytes()
    assert (tmp_path / "package-lock.json").read_bytes() == committed

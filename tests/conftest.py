"""Shared fixtures: real gateways on 127.0.0.1 (in a thread or a subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, settings

from gateway import config as config_module
from gateway.core.buckets import Guard
from gateway.server import Gateway
from storagegw.v1 import storage_pb2_grpc
from tests import server_reports
from tests.ceph_rgw import CephRgw
from tests.clamd_server import ClamdServer
from tests.drivers import NAMES, backend_env
from tests.drivers import S3_TEST_BUCKET as S3_TEST_BUCKET  # for the modules that import it here
from tests.drivers import gcs_env as gcs_env
from tests.fake_gcs_server import FakeGcsServer, throwaway_service_account
from tests.log_records import LogRecords, captured
from tests.moto_server import MotoServer
from tests.server_reports import report

# Property tests check what holds for every input, never how fast: a loaded
# CI machine must not fail them on Hypothesis's per-example deadline.
settings.register_profile("storagegw", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("storagegw")

REPO = Path(__file__).resolve().parent.parent
CLI_PATH = str(Path(sys.executable).with_name("storagegw"))
# Every driver the gRPC-level tests run on (tests/drivers.py: DRIVERS), a
# compressed local bucket (every type compressed) and a dedup local bucket (the
# Ceph ones are slower and run in the conformance suite and their own tests only);
# STORAGEGW_TEST_BACKENDS=s3-ceph-dedup,... runs them on other rows instead.
BACKENDS = [n for n in os.environ.get("STORAGEGW_TEST_BACKENDS", "").split(",") if n] or [
    *NAMES,
    "local-zstd",
    "local-dedup",
]


@dataclass
class RunningGateway:
    """A gateway serving in a background thread with its own event loop."""

    gateway: Gateway
    loop: asyncio.AbstractEventLoop
    data_dir: Path
    backend_name: str = ""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.gateway.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.http_port}"

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the gateway's loop (e.g. a driver call) and wait."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def backend(self, bucket: str = "") -> Any:
        buckets = self.gateway.buckets
        return dict(buckets)[bucket or buckets.default]


@contextmanager
def run_gateway(
    env: dict[str, str], data_dir: Path, guards: Sequence[Guard] = ()
) -> Iterator[RunningGateway]:
    settings = {
        "GATEWAY_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
        "STORAGE_BASE_PATH": str(data_dir),
        "GATEWAY_HEALTH_INTERVAL": "3600",
        **env,
    }
    config = config_module.load(settings)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, Any] = {}

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            gateway = Gateway(config, guards)
            await gateway.start()
            holder["gateway"] = gateway
        except BaseException as error:
            holder["error"] = error
            raise
        finally:
            started.set()
        await stop.wait()
        await gateway.stop(grace=float(holder.get("grace", 5)))

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(30)
    if "error" in holder:
        thread.join(10)
        raise holder["error"]
    running = RunningGateway(holder["gateway"], loop, data_dir)
    try:
        yield running
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def ceph_rgw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CephRgw]:
    if not CephRgw.available():
        pytest.skip(
            f"Ceph not installed (missing {', '.join(CephRgw.missing_binaries())}); "
            "run scripts/install-test-servers.sh (make test does)"
        )
    ceph = CephRgw().start(tmp_path_factory.mktemp("ceph"))
    report(request.config, f"Ceph RGW ready in {ceph.startup_seconds:.1f} s at {ceph.endpoint}")
    try:
        yield ceph
    finally:
        ceph.stop()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcsServer]:
    with FakeGcsServer() as server:
        yield server


def _clamd() -> ClamdServer:
    if not ClamdServer.available():
        pytest.skip("clamd not installed; run scripts/install-test-servers.sh (make test does)")
    return ClamdServer()


@pytest.fixture(scope="session")
def clamd() -> Iterator[ClamdServer]:
    """A real clamd for the session (per xdist worker), with the EICAR
    signatures of tests/clamd_server.py."""
    with _clamd() as server:
        yield server


@pytest.fixture
def doomed_clamd() -> Iterator[ClamdServer]:
    """A clamd of the test's own, which the test may kill (ClamdServer.kill)."""
    with _clamd() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway service-account key: the GCS backend signs URLs with it."""
    return throwaway_service_account(tmp_path_factory.mktemp("gcs-key"))


@contextmanager
def resumable_gateway(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    secret: str,
    settings: dict[str, str] | None = None,
) -> Iterator[RunningGateway]:
    """A gateway whose default bucket is on backend, for resumable uploads.
    On gcs it reaches fake-gcs-server through a proxy that answers session
    status queries and cancellations as GCS does and checks x-goog-hash on
    the last chunk (the emulator finalizes a session on a status query and
    ignores cancellation; tests/backends/test_gcs_uploads.py shows the gaps).
    settings: more of the gateway's settings."""
    from tests.gcs_proxy import RecordingProxy

    env = {**backend_env(request, backend), "STORAGE_URL_SECRET": secret, **(settings or {})}
    with contextlib.ExitStack() as stack:
        if backend in ("gcs", "gcs-zstd"):
            proxy = stack.enter_context(RecordingProxy(env["STORAGE_EMULATOR_HOST"]))
            proxy.emulate_sessions = proxy.check_upload_hash = True
            env["STORAGE_EMULATOR_HOST"] = proxy.endpoint
        running = stack.enter_context(run_gateway(env, tmp_path))
        running.backend_name = backend
        yield running


def pytest_configure(config: pytest.Config) -> None:
    # Its hooks show the server lines `report` keeps under pytest-xdist.
    config.pluginmanager.register(server_reports, "storagegw-server-reports")
    config.addinivalue_line(
        "markers",
        "emulator_gap(backend, reason, case=''): on that backend of the `gateway` or "
        "`backend` fixture (and in the parametrized case whose id contains `case`) the test "
        "is expected to fail, because the emulator (not the gateway) gets it wrong",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An emulator_gap mark becomes a strict xfail on that backend's instance
    only, so the test still passes everywhere else, and an emulator that gets
    fixed turns the xfail into a failure that says so."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        backend = params.get("gateway") or params.get("backend")
        for mark in item.iter_markers("emulator_gap"):
            # A compressed bucket on that emulator (tests/drivers.py: NAME-zstd) too,
            # not strictly: its compressed objects are smaller, so the emulator may
            # take another path (one request where the plain one sends several).
            compressed = backend == f"{mark.args[0]}-zstd"
            on_it = backend == mark.args[0] or compressed
            if on_it and mark.kwargs.get("case", "") in item.name:
                reason = mark.kwargs.get("reason") or mark.args[1]
                item.add_marker(pytest.mark.xfail(strict=not compressed, reason=reason))


@pytest.fixture(params=BACKENDS)
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    """A gateway whose default bucket is on each backend in turn."""
    with run_gateway(backend_env(request, request.param), tmp_path) as running:
        running.backend_name = request.param
        yield running


@pytest.fixture
def local_gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway({"STORAGE_BACKEND": "local"}, tmp_path) as running:
        yield running


@pytest.fixture
def memory_gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway({"STORAGE_BACKEND": "memory"}, tmp_path) as running:
        yield running


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways with custom settings: gateway_factory(STORAGE_BACKEND="memory", ...)."""
    stack: list[Any] = []

    def start(**env: str) -> RunningGateway:
        manager = run_gateway(env, tmp_path)
        running = manager.__enter__()
        stack.append(manager)
        return running

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def stub(gateway: RunningGateway) -> Iterator[storage_pb2_grpc.StorageServiceStub]:
    """A raw generated stub on the parametrized gateway."""
    with grpc.insecure_channel(gateway.target) as channel:
        yield storage_pb2_grpc.StorageServiceStub(channel)


@dataclass
class GatewayProcess:
    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    data_dir: Path
    log_lines: list[str]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


_SERVING = re.compile(r"serving gRPC on [^:]+:(\d+) and signed URLs on [^:]+:(\d+)")


@contextmanager
def gateway_process(
    data_dir: Path, command: list[str] | None = None, **env: str
) -> Iterator[GatewayProcess]:
    """`python -m gateway` (or command) as a separate process; ready when it logs its ports."""
    settings = {
        **os.environ,
        "GATEWAY_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
        "STORAGE_BASE_PATH": str(data_dir),
        "GATEWAY_LOG_FORMAT": "json",
        **env,
    }
    process = subprocess.Popen(
        command or [sys.executable, "-m", "gateway"],
        env=settings,
        cwd=data_dir,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    ports = None
    seen = []
    for line in process.stderr:
        seen.append(line)
        message = json.loads(line).get("message", "")
        match = _SERVING.search(message)
        if match:
            ports = int(match.group(1)), int(match.group(2))
            break
    if ports is None:
        process.wait(10)
        raise RuntimeError("gateway did not start:\n" + "".join(seen))
    # Keep draining stderr: a full pipe would block the gateway's logging.
    stderr = process.stderr
    drain = threading.Thread(target=lambda: seen.extend(stderr), daemon=True)
    drain.start()
    running = GatewayProcess(process, ports[0], ports[1], data_dir, seen)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
        drain.join(10)
        stderr.close()


@pytest.fixture
def access_log() -> Iterator[LogRecords]:
    with captured("storagegw.access") as records:
        yield records


def signal_first_write(running: RunningGateway, bucket: str = "") -> threading.Event:
    """An event set when the bucket's driver receives its first write() call.

    Wraps the real driver's writer (it still does all the work), so a test can
    act at a known point of a transfer without sleeping.
    """
    backend = running.backend(bucket)
    written = threading.Event()
    original_open_write = backend.open_write

    class SpyWriter:
        def __init__(self, writer: Any) -> None:
            self._writer = writer

        async def write(self, data: bytes) -> None:
            await self._writer.write(data)
            written.set()

        async def commit(self, checksums: Any) -> Any:
            return await self._writer.commit(checksums)

        async def abort(self) -> None:
            await self._writer.abort()

    async def open_write(key: str, options: Any) -> Any:
        return SpyWriter(await original_open_write(key, options))

    backend.open_write = open_write
    return written

"""Starting the two servers side by side: the raw baseline and the gateway."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import procs

ROOT = Path(__file__).resolve().parent.parent


def child_env(extra: dict[str, str]) -> dict[str, str]:
    # Only the settings the bench chooses: no STORAGE_* or GATEWAY_* from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start(
    processes: procs.Processes,
    data_dir: Path,
    chunk_size: int,
    options: list[tuple[str, Any]],
    extra_env: dict[str, str],
) -> dict[str, procs.Server]:
    """Both servers, ready to serve: {"raw": ..., "gateway": ...}.

    extra_env (--server-env) goes to both, so an experiment such as a malloc
    setting is applied to the baseline too.
    """
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(procs.free_port())
    raw_port, grpc_port, http_port = sorted(ports)
    raw_address = f"127.0.0.1:{raw_port}"
    argv = [sys.executable, "-m", "bench.raw_server", "--listen", raw_address]
    argv += ["--chunk-size", str(chunk_size), "--options", json.dumps(options)]
    raw_log = data_dir / "raw-server.log"
    raw = procs.Server(
        "raw server", processes.spawn(argv, child_env(extra_env), raw_log), raw_address, raw_log
    )
    gateway = start_gateway(
        processes,
        data_dir / "gateway.log",
        {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(data_dir / "gateway")},
        chunk_size,
        extra_env,
        (grpc_port, http_port),
    )
    for server in (raw, gateway):
        procs.wait_ready(server, options)
    return {"raw": raw, "gateway": gateway}


def gateway_env(backend_env: dict[str, str], chunk_size: int) -> dict[str, str]:
    """The gateway's settings, but for its listen addresses: backend_env (STORAGE_*)
    plus what the bench sets for every gateway."""
    return {
        **backend_env,
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "WARNING",  # no per-RPC access log lines
        "GATEWAY_CHUNK_SIZE": str(chunk_size),
        "GATEWAY_SHUTDOWN_GRACE": "2",
    }


def start_gateway(
    processes: procs.Processes,
    log_path: Path,
    backend_env: dict[str, str],
    chunk_size: int,
    extra_env: dict[str, str],
    ports: tuple[int, int] | None = None,
    name: str = "gateway",
) -> procs.Server:
    """python -m gateway with backend_env (see gateway_env), started but not yet
    ready (procs.wait_ready); ports: (gRPC, HTTP), free ones when None."""
    if ports is None:
        grpc_port = procs.free_port()
        http_port = procs.free_port()
        while http_port == grpc_port:
            http_port = procs.free_port()
    else:
        grpc_port, http_port = ports
    env = child_env(extra_env)
    env.update(gateway_env(backend_env, chunk_size))
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{grpc_port}", GATEWAY_HTTP_LISTEN=f"127.0.0.1:{http_port}"
    )
    return procs.Server(
        name,
        processes.spawn([sys.executable, "-m", "gateway"], env, log_path),
        f"127.0.0.1:{grpc_port}",
        log_path,
    )

"""`python -m gateway` / `storagegw serve`: run the gateway until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys

from gateway import config as config_module
from gateway import logs, workers
from gateway.backends import registry
from gateway.core import tuning

log = logging.getLogger("storagegw")

_STORAGE_SETTINGS = ("STORAGE_", "GATEWAY_CONFIG", "GATEWAY_DEFAULT_BUCKET")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="storagegw serve",
        description="Run the storagegw gateway. Settings come from the environment "
        "(see the README's configuration reference); flags override them.",
    )
    parser.add_argument("--listen", help="gRPC host:port (GATEWAY_LISTEN)")
    parser.add_argument("--http-listen", help="signed-URL HTTP host:port (GATEWAY_HTTP_LISTEN)")
    parser.add_argument("--backend", choices=registry.kinds(), help="STORAGE_BACKEND")
    parser.add_argument("--data", help="data directory (STORAGE_BASE_PATH)")
    parser.add_argument("--config", help="TOML file with several buckets (GATEWAY_CONFIG)")
    # Set by the supervisor of GATEWAY_WORKERS (gateway/workers.py) only.
    parser.add_argument(workers.WORKER_FLAG, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    for flag, name in (
        (args.listen, "GATEWAY_LISTEN"),
        (args.http_listen, "GATEWAY_HTTP_LISTEN"),
        (args.backend, "STORAGE_BACKEND"),
        (args.data, "STORAGE_BASE_PATH"),
        (args.config, "GATEWAY_CONFIG"),
    ):
        if flag:
            env[name] = flag
    try:
        config = config_module.load(env)
    except config_module.ConfigError as error:
        print(f"storagegw: configuration error: {error}", file=sys.stderr)
        return 2
    ready_fd = None
    if args.worker is not None:
        index, ready_fd = workers.parse_worker_flag(args.worker)
        config = dataclasses.replace(config, worker=index)
        logs.process_fields = {"worker": index, "pid": os.getpid()}
    logs.setup(config.log_format, config.log_level)
    # Before any thread starts: allocator settings are process-wide.
    tuned = tuning.tune_malloc(env)
    log.debug("allocator tuning for streaming buffers: %s", "on" if tuned else "off")
    if not any(value for name, value in env.items() if name.startswith(_STORAGE_SETTINGS)):
        log.info(
            "no storage configured: using the local backend under %s",
            config.base_path.resolve(),
        )
    if config.workers > 1 and ready_fd is None:
        listens = {
            "GATEWAY_LISTEN": config.listen,
            "GATEWAY_HTTP_LISTEN": config.http_listen,
            "GATEWAY_HEALTH_LISTEN": config.health_listen,
        }
        return workers.supervise(env, config.workers, listens)
    from gateway.server import Gateway

    async def run() -> None:
        await workers.serve(Gateway(config), ready_fd)

    try:
        asyncio.run(run())
    except config_module.ConfigError as error:  # a TLS file that changed since it was checked
        log.error("cannot start: %s", error)
        return 2
    except OSError as error:
        log.error("cannot start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

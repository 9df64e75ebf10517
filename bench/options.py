"""`python -m bench`'s options: parsed, checked against each other, and given the
defaults of the drivers and sections they configure."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bench.gcs import DEFAULT_CHUNK_SIZE as GCS_CHUNK_SIZE
from bench.peers import add_arguments as add_peer_arguments
from bench.peers import check_arguments as check_peer_arguments
from bench.report import (
    human_size,
)
from bench.s3_servers import SERVERS as S3_SERVERS
from bench.workers import add_arguments as add_workers_arguments
from bench.workloads import WORKLOADS
from gateway.backends.gcs.settings import CHUNK_MULTIPLE, MAX_CHUNK_SIZE
from gateway.backends.s3.settings import MAX_PART_SIZE, MIN_PART_SIZE, S3Settings
from gateway.config import ConfigError, load, parse_size

RESULTS = Path(__file__).resolve().parent / "results"
# The S3 driver's defaults, for the gateway and the direct client alike.
_S3_DEFAULTS = S3Settings(bucket="-")


def _size(text: str) -> int:
    try:
        return parse_size("size", text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,16,64") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency values must be positive")
    return values


def _names(text: str, known: Sequence[str], option: str) -> list[str]:
    """The comma-separated names of text, each one of known."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if set(names) - set(known) or not names:
        raise argparse.ArgumentTypeError(f"{option} takes a list of {', '.join(known)}")
    return names


def _only(text: str) -> list[str]:
    return _names(text, WORKLOADS, "--only")


def _s3_servers(text: str) -> list[str]:
    return list(dict.fromkeys(_names(text, S3_SERVERS, "--s3-servers")))


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Gateway vs raw grpc.aio baseline: big Put/Get and small-object ops "
        "(local backend); S3: the gateway vs direct aioboto3 on moto and Ceph RGW; GCS: the "
        "gateway vs direct google-cloud-storage on fake-gcs-server.",
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=parse_size("size", "1GiB"),
        help="big object size; SIZE/4 runs too (default 1GiB)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_size,
        default=parse_size("chunk", "1MiB"),
        help="message size for both servers (GATEWAY_CHUNK_SIZE; default 1MiB)",
    )
    parser.add_argument(
        "--small-ops", type=int, default=2000, help="ops per small-object cell (default 2000)"
    )
    parser.add_argument(
        "--small-seconds",
        type=float,
        default=5.0,
        help="time cap per small-object cell (default 5)",
    )
    parser.add_argument("--small-size", type=_size, default=4096, help="small object size (4KiB)")
    parser.add_argument(
        "--dedup-count", type=int, default=1000, help="identical Puts of the dedup section (1000)"
    )
    parser.add_argument(
        "--dedup-file-size",
        type=_size,
        default=parse_size("dedup-file-size", "1MiB"),
        help="the dedup section's identical object (1MiB)",
    )
    parser.add_argument(
        "--concurrency",
        type=_int_list,
        default=[1, 16, 64],
        help="small-object concurrencies (default 1,16,64)",
    )
    parser.add_argument(
        "--only",
        type=_only,
        default=list(WORKLOADS),
        help="subset of put,get,small (local backend vs raw), s3, gcs, resumable (resumable "
        "upload vs plain Put on local and S3, and time to resume) and limits (gateway RSS "
        "with 2,000 idle Put streams and 64 concurrent 64 MiB Puts) and auth (4 KiB ops/s with "
        "TLS, mTLS, a JWT, a JWT + policy against none; a SIZE Put and Get over TLS against "
        "plaintext) and telemetry (the same cells with traces and metrics fully on against off) "
        "and policy (4 KiB Put with a bucket's upload policy, type sniffing included, against "
        "none) and peers (storagegw against FastAPI + uvicorn, rclone serve http and webdav: a "
        "SIZE Put and Get, small-object Put and Get) and scan (a SIZE Put to a bucket scanned "
        "by clamd against a plain one, with clamd's CPU) and compression (a JSON log of up "
        "to 256 MiB Put and Got on a compressed bucket against a plain one; default all)",
    )
    parser.add_argument(
        "--s3-servers",
        type=_s3_servers,
        default=list(S3_SERVERS),
        help="S3 servers for the s3 workload: moto,ceph (default both; Ceph is skipped with a "
        "note when it is not installed)",
    )
    parser.add_argument(
        "--s3-part-size",
        type=_size,
        default=_S3_DEFAULTS.part_size,
        help="S3 part size, for the gateway (STORAGE_S3_PART_SIZE) and direct alike "
        f"(default the driver's, {human_size(_S3_DEFAULTS.part_size)})",
    )
    parser.add_argument(
        "--s3-concurrency",
        type=int,
        default=_S3_DEFAULTS.concurrency,
        help="S3 part uploads in flight, for the gateway (STORAGE_S3_CONCURRENCY) and direct "
        f"alike (default the driver's, {_S3_DEFAULTS.concurrency})",
    )
    parser.add_argument(
        "--gcs-chunk-size",
        type=_size,
        default=GCS_CHUNK_SIZE,
        help="GCS resumable-upload chunk and download window, for the gateway "
        "(STORAGE_GCS_CHUNK_SIZE) and direct alike; a multiple of 256KiB, at most 256MiB "
        f"(default {human_size(GCS_CHUNK_SIZE)}: fake-gcs-server's uploads slow down with the "
        "number of chunks)",
    )
    parser.add_argument(
        "--small-client",
        choices=("auto", "threads", "aio"),
        default="auto",
        help="small-op driver: threads+sync stubs, grpc.aio, or auto (whichever "
        "gives the higher raw baseline per cell; default)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each big transfer; the best is kept (default 1)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="parent of the gateway's temp data dir (default: system temp)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="record the gateway with py-spy during its workloads"
    )
    parser.add_argument(
        "--server-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for both servers (repeatable), e.g. "
        "MALLOC_MMAP_THRESHOLD_=16777216",
    )
    add_peer_arguments(parser)
    add_workers_arguments(parser, _int_list)
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    args.server_env = dict(args.server_env)
    # The gateway's own rules for the chunk size (4 KiB to 2 MiB).
    try:
        load({"GATEWAY_CHUNK_SIZE": str(args.chunk_size)})
    except ConfigError as error:
        parser.error(str(error))
    if args.size < 4 or args.small_ops < 1 or args.repeat < 1:
        parser.error("--size, --small-ops and --repeat must be positive")
    check_peer_arguments(parser, args)
    if not MIN_PART_SIZE <= args.s3_part_size <= MAX_PART_SIZE:
        parser.error("--s3-part-size must be between 5MiB and 5GiB (S3's limits)")
    if args.s3_concurrency < 1:
        parser.error("--s3-concurrency must be positive")
    gcs_chunk = args.gcs_chunk_size
    if gcs_chunk % CHUNK_MULTIPLE or not CHUNK_MULTIPLE <= gcs_chunk <= MAX_CHUNK_SIZE:
        parser.error("--gcs-chunk-size must be a multiple of 256KiB, at most 256MiB")
    return args

"""`python -m bench`: options, machine facts, and the run from start to stop."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import google.protobuf
import grpc
import psutil

from bench import procs
from bench.auth import AuthSection
from bench.compression import CompressionSection
from bench.dedup import DedupSection
from bench.gcs import DEFAULT_CHUNK_SIZE as GCS_CHUNK_SIZE
from bench.gcs import GcsSection
from bench.limits import LimitsSection
from bench.peers import PeersSection
from bench.peers import add_arguments as add_peer_arguments
from bench.peers import check_arguments as check_peer_arguments
from bench.policy import PolicySection
from bench.remote import RemoteSection
from bench.report import (
    RemoteResults,
    Row,
    all_met,
    human_size,
    remote_rss_checks,
    render,
    render_profiles,
    rss_checks,
    write_json,
)
from bench.resumable import ResumableSection
from bench.runner import Runner
from bench.s3 import S3Section
from bench.s3_servers import SERVERS as S3_SERVERS
from bench.scan import ScanSection
from bench.telemetry import TelemetrySection
from bench.workers import WorkersSection
from bench.workers import add_arguments as add_workers_arguments
from bench.workers import wanted as workers_wanted
from gateway.backends.gcs.settings import CHUNK_MULTIPLE, MAX_CHUNK_SIZE
from gateway.backends.s3.settings import MAX_PART_SIZE, MIN_PART_SIZE, S3Settings
from gateway.config import ConfigError, load, parse_size
from gateway.server import channel_options

RESULTS = Path(__file__).resolve().parent / "results"
LOCAL_WORKLOADS = ("put", "get", "small")
# The S3 driver's defaults, for the gateway and the direct client alike.
_S3_DEFAULTS = S3Settings(bucket="-")
# The sections comparing the gateway with a storage server's own client.
REMOTE: dict[str, type[RemoteSection[Any]]] = {"s3": S3Section, "gcs": GcsSection}
# The sections side by side: variants against a baseline, storagegw against its peers.
SIDE_BY_SIDE: dict[str, type[AuthSection | PeersSection | WorkersSection]] = {
    "auth": AuthSection,
    "telemetry": TelemetrySection,
    "policy": PolicySection,  # the upload policy's cost on a 4 KiB Put
    "peers": PeersSection,
    "workers": WorkersSection,  # run by --workers (with small), not named in --only
}
ReportedSection: TypeAlias = (
    ResumableSection
    | LimitsSection
    | AuthSection
    | PeersSection
    | WorkersSection
    | ScanSection
    | CompressionSection
    | DedupSection
)
# The sections with a table and a JSON file of their own, in the order they run.
REPORTED: dict[str, type[ReportedSection]] = {
    "resumable": ResumableSection,
    "limits": LimitsSection,
    **SIDE_BY_SIDE,
    # Malware scanning: a big Put to a scanning bucket against a plain one.
    "scan": ScanSection,
    # A compressed bucket against a plain one: a JSON log's Put and Get.
    "compression": CompressionSection,
    # Content-addressed dedup: many identical Puts, and a big Put/Get, against a plain bucket.
    "dedup": DedupSection,
}
WORKLOADS = (*LOCAL_WORKLOADS, *REMOTE, *REPORTED)
WORKLOADS = tuple(name for name in WORKLOADS if name != "workers")


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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: str) -> str:
    best = None
    for part in psutil.disk_partitions(all=True):
        if path.startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return f"{best.fstype} ({best.device} on {best.mountpoint})" if best else "unknown"


def facts(args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    found = {
        "cores": f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical "
        f"({_cpu_model()})",
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "chunk size": human_size(args.chunk_size),
        "big sizes": f"{human_size(args.size // 4)} and {human_size(args.size)}",
        "small": f"{human_size(args.small_size)} objects, concurrency "
        f"{','.join(map(str, args.concurrency))}, up to {args.small_ops} ops or "
        f"{args.small_seconds:g} s per cell",
        "gateway data": f"{data_dir} on {_filesystem(data_dir)}",
        "load average": _load(),
    }
    if not set(args.only) & {"small", *SIDE_BY_SIDE}:
        del found["small"]
    if not set(args.only) & {*LOCAL_WORKLOADS, *SIDE_BY_SIDE}:
        del found["gateway data"]  # the S3 and GCS sections' gateways keep nothing on disk
    return found


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, through the finally below


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tuned = os.environ.get("BENCH_DRIVER_MALLOC", "tuned") == "tuned" and procs.tune_own_malloc()
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="storagegw-bench-", dir=args.data_dir)
    processes = procs.Processes()
    runner: Runner | None = None
    try:
        # The gateway's server options, which the bench's clients use too, plus
        # the bundled client's retry of refused streams (storagegw._common) for
        # every method of every server: near the per-connection stream limit a
        # gRPC server refuses some new streams under load, and a refused call
        # would end a cell.
        options: list[tuple[str, Any]] = [
            *channel_options(load({})),
            ("grpc.service_config", procs.retry_everywhere()),
        ]
        header = facts(args, data_dir)
        notes: list[str] = []
        rows: list[Row] = []
        remote: list[RemoteResults] = []
        failed: list[str] = []
        summaries: dict[str, Any] = {}
        if set(args.only) & set(LOCAL_WORKLOADS):
            runner = Runner(args, processes, Path(data_dir), options)
            print("starting servers...", flush=True)
            runner.start_servers()
            notes += runner.setup_notes()
            header["peak RSS method"] = runner.rss_method
            pids = ", ".join(f"{name} pid {server.pid}" for name, server in runner.servers.items())
            print(f"servers up: {pids}", flush=True)
            runner.run_all()
            rows = runner.rows
            summaries.update(runner.profile_summaries())
            runner.close()
            for server in runner.servers.values():  # idle from here on: free their memory
                processes.stop(server.process)
        notes.append(
            "driver malloc: "
            + (
                "tuned (mallopt: keeps freed 1 MiB buffers; BENCH_DRIVER_MALLOC=default to "
                "turn off); servers run with glibc defaults unless --server-env says otherwise"
                if tuned
                else "glibc defaults"
            )
        )
        for workload, kind in REMOTE.items():
            if workload not in args.only:
                remote.append(RemoteResults(kind.kind, kind.title, []))
                continue
            section = kind(args, processes, Path(data_dir), options)
            section.run()
            header.update(section.facts)
            notes += section.notes
            remote.append(section.results())
            failed += section.failed
            summaries.update(section.profile_summaries())
        reported: list[ReportedSection] = []  # each with a table and a JSON file of its own
        for name, section_class in REPORTED.items():
            if name in args.only or (name == "workers" and workers_wanted(args)):
                reported.append(section_class(args, processes, Path(data_dir), options))
                reported[-1].run()
                notes += reported[-1].notes
                failed += reported[-1].failed
        header["load average at end"] = _load()
        checks = rss_checks({row.workload: row for row in rows}, args.size)
        for results in remote:
            checks += remote_rss_checks(results.rows, args.size)
        print()
        print(render(header, rows, checks, notes, remote))
        if summaries:
            print()
            print(render_profiles(summaries))
        for section in reported:
            print()
            print(section.render())
            section_json = args.output.with_name(f"{args.output.stem}-{section.name}.json")
            section_json.write_text(json.dumps(section.as_json(), indent=2) + "\n")
        write_json(args.output, header, rows, checks, notes, summaries, remote)
        print(f"\nresults written to {args.output}")
        met = all_met(rows, checks, remote) and all(section.all_met() for section in reported)
        return 1 if args.check and (failed or not met) else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers", file=sys.stderr)
        return 130
    finally:
        if runner is not None:
            runner.close()
        processes.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)

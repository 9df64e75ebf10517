"""The machine facts a bench report starts with: cores, memory, versions, the sizes run,
the filesystem of the gateway's data, and the load average."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

import google.protobuf
import grpc
import psutil

from bench.report import (
    human_size,
)
from bench.workloads import LOCAL_WORKLOADS, SIDE_BY_SIDE


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
        "load average": load_average(),
    }
    if not set(args.only) & {"small", *SIDE_BY_SIDE}:
        del found["small"]
    if not set(args.only) & {*LOCAL_WORKLOADS, *SIDE_BY_SIDE}:
        del found["gateway data"]  # the S3 and GCS sections' gateways keep nothing on disk
    return found


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"

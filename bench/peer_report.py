"""The peers section's figures: samples, medians, rows with storagegw's alongside, the table."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

STORAGEGW = "storagegw"
# storagegw again, its big download in one stream (download_file(parallel=1)):
# what its parallel ranges gain, in the same run.
STORAGEGW_ONE_STREAM = "storagegw-1"
GATEWAY_PATHS = (STORAGEGW, STORAGEGW_ONE_STREAM)
# Issue 14's targets: storagegw's rate over the peer's, in the same run.
TARGETS = {
    ("put", "big", "fastapi"): 1.0,
    ("get", "big", "rclone-http"): 1.0,
    # Issue 15's: download_file's parallel ranges over one stream.
    ("get", "big", STORAGEGW_ONE_STREAM): 1.5,
    ("put", "small", "fastapi"): 1.0,
}
# The client each path is driven with, by (storagegw or an HTTP peer, op, kind).
CLIENTS = {
    (STORAGEGW, "put", "big"): "Client.put_file",
    (STORAGEGW, "get", "big"): "Client.download_file",
    (STORAGEGW_ONE_STREAM, "get", "big"): "Client.download_file, parallel=1",
    (STORAGEGW, "put", "small"): "AsyncClient.put_bytes",
    (STORAGEGW, "get", "small"): "AsyncClient.get_bytes",
    ("http", "put", "big"): "httpx",
    ("http", "get", "big"): "httpx",
    ("http", "put", "small"): "aiohttp",
    ("http", "get", "small"): "aiohttp",
}


@dataclass(frozen=True)
class Sample:
    """One run of one path: rate and CPU per unit of work."""

    rate: float  # MiB/s or ops/s
    server_cpu: float  # s/GiB or ms/op
    client_cpu: float


@dataclass(frozen=True)
class PeerRow:
    workload: str  # "put 1 GiB", "get 4 KiB c=16"
    path: str  # "storagegw" or a peer's name
    label: str  # the server and its client, for the table
    unit: str  # "MiB/s" or "ops/s"
    rate: float  # medians of the runs
    server_cpu: float  # s/GiB or ms/op
    client_cpu: float
    storagegw_rate: float  # storagegw's medians in the same cell
    storagegw_cpu: float  # server + client
    runs: int
    min_ratio: float | None  # None: shown, no target

    @property
    def ratio(self) -> float:
        """storagegw's rate over this path's."""
        return self.storagegw_rate / self.rate if self.rate else 0.0

    @property
    def cpu_ratio(self) -> float:
        """storagegw's CPU on both ends over this path's."""
        both = self.server_cpu + self.client_cpu
        return self.storagegw_cpu / both if both else 0.0

    @property
    def met(self) -> bool:
        return self.min_ratio is None or self.ratio >= self.min_ratio

    def cpu(self, value: float) -> str:
        return cpu_text(self.unit, value)


def cpu_text(unit: str, value: float) -> str:
    return f"{value:.2f} s/GiB" if unit == "MiB/s" else f"{value:.3f} ms/op"


def median(samples: list[Sample]) -> Sample:
    """Each figure's median over the runs."""
    return Sample(
        statistics.median(s.rate for s in samples),
        statistics.median(s.server_cpu for s in samples),
        statistics.median(s.client_cpu for s in samples),
    )


def rows_of(
    workload: str,
    unit: str,
    cell: tuple[str, str],
    runs: dict[str, list[Sample]],
    servers: dict[str, str],
) -> list[PeerRow]:
    """The rows of one cell ((op, "big" or "small")): each path's medians with
    storagegw's alongside; servers: each path's label."""
    medians = {path: median(samples) for path, samples in runs.items()}
    ours = medians[STORAGEGW]
    op, kind = cell
    rows = []
    for path, figures in medians.items():
        client = CLIENTS[(path if path in GATEWAY_PATHS else "http", op, kind)]
        rows.append(
            PeerRow(
                workload,
                path,
                f"{servers[path]} ({client})",
                unit,
                figures.rate,
                figures.server_cpu,
                figures.client_cpu,
                ours.rate,
                ours.server_cpu + ours.client_cpu,
                len(runs[path]),
                TARGETS.get((op, kind, path)),
            )
        )
    return rows


def progress(workload: str, path: str, unit: str, sample: Sample, what: str = "") -> None:
    print(
        f"  {workload:<18} {path:<14} {what:<6} {sample.rate:>10,.1f} {unit}   server "
        f"{cpu_text(unit, sample.server_cpu)}   client {cpu_text(unit, sample.client_cpu)}",
        flush=True,
    )


def render(title: str, rows: list[PeerRow]) -> str:
    lines = [
        "| workload | server (client) | rate | storagegw/this | target | server CPU | "
        "client CPU | CPU both ends, storagegw/this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rate = f"{row.rate:,.0f} ops/s" if row.unit == "ops/s" else f"{row.rate:,.1f} MiB/s"
        ours = row.path == STORAGEGW
        target = (
            "-"
            if row.min_ratio is None
            else f"{'met' if row.met else 'MISSED'} (>= {row.min_ratio}x)"
        )
        lines.append(
            f"| {row.workload} | {row.label} | {rate} | "
            f"{'-' if ours else f'{row.ratio:.2f}x'} | {target} | {row.cpu(row.server_cpu)} | "
            f"{row.cpu(row.client_cpu)} | {'-' if ours else f'{row.cpu_ratio:.2f}x'} |"
        )
    return title + "\n\n" + "\n".join(lines)


def as_json(rows: list[PeerRow]) -> list[dict[str, Any]]:
    return [
        {**asdict(row), "ratio": row.ratio, "cpu_ratio": row.cpu_ratio, "met": row.met}
        for row in rows
    ]

"""Results: rows with targets, the printed tables and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
RSS_LIMIT = 128 * MIB
# Flat: the peak at SIZE exceeds the peak at SIZE/4 by at most this much (allocator
# noise between runs is up to ~10 MiB; memory that grew with the size would add 3/4 SIZE).
FLAT_SLACK_BYTES = 16 * MIB


def human_size(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


@dataclass
class Row:
    workload: str
    unit: str  # "MiB/s" or "ops/s"
    raw: float
    gateway: float
    min_ratio: float
    raw_peak_rss: int
    gateway_peak_rss: int
    raw_cores: float  # server CPU time / wall time: 1.0 is one core busy throughout
    gateway_cores: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.gateway / self.raw if self.raw else 0.0

    @property
    def met(self) -> bool:
        return self.ratio >= self.min_ratio

    def cpu_per_unit(self, cores: float, rate: float) -> str:
        """Server CPU per MiB (ms) or per op (us): what the work costs, busy or not."""
        if not rate:
            return "-"
        if self.unit == "ops/s":
            return f"{cores / rate * 1e6:,.0f} us/op"
        return f"{cores / rate * 1e3:.2f} ms/MiB"


@dataclass
class Check:
    """A target that is not a throughput ratio (peak RSS)."""

    name: str
    value: str
    target: str
    met: bool


def rss_checks(rows: dict[str, Row], size: int) -> list[Check]:
    """Gateway peak RSS during SIZE transfers within the limit, and flat from SIZE/4 to SIZE."""
    checks = []
    for op in ("put", "get"):
        big = rows.get(f"{op} {human_size(size)}")
        if big is None:
            continue
        peak = big.gateway_peak_rss
        checks.append(
            Check(
                f"gateway peak RSS, {op} {human_size(size)}",
                f"{peak / MIB:.1f} MiB",
                f"<= {RSS_LIMIT // MIB} MiB",
                peak <= RSS_LIMIT,
            )
        )
        small = rows.get(f"{op} {human_size(size // 4)}")
        if small is None or small is big:
            continue
        low, high = small.gateway_peak_rss, big.gateway_peak_rss
        checks.append(
            Check(
                f"gateway peak RSS flat, {op} {human_size(size // 4)} -> {human_size(size)}",
                f"{low / MIB:.1f} -> {high / MIB:.1f} MiB ({(high - low) / MIB:+.1f})",
                f"growth <= {FLAT_SLACK_BYTES // MIB} MiB",
                high - low <= FLAT_SLACK_BYTES,
            )
        )
    return checks


def _table(header: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = [i > 0 for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r and c[:1].isdigit() else c.ljust(w)
            for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def _rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if unit == "ops/s" else f"{value:,.1f} {unit}"


def render(facts: dict[str, Any], rows: list[Row], checks: list[Check], notes: list[str]) -> str:
    out = ["storagegw benchmark: gateway vs raw grpc.aio baseline", ""]
    width = max(len(k) for k in facts)
    out += [f"  {k.ljust(width)}  {v}" for k, v in facts.items()]
    out.append("")
    lines = [
        [
            row.workload,
            _rate(row.raw, row.unit),
            _rate(row.gateway, row.unit),
            f"{row.ratio:.2f}x",
            f">= {row.min_ratio:.2f}x",
            "yes" if row.met else "NO",
            f"{row.raw_peak_rss / MIB:.1f}",
            f"{row.gateway_peak_rss / MIB:.1f}",
            row.cpu_per_unit(row.raw_cores, row.raw),
            row.cpu_per_unit(row.gateway_cores, row.gateway),
            row.note,
        ]
        for row in rows
    ]
    header = ["workload", "raw", "gateway", "gw/raw", "target", "met?"]
    header += ["raw RSS MiB", "gw RSS MiB", "raw CPU", "gw CPU", "note"]
    out.append(_table(header, lines))
    if checks:
        out.append("")
        check_lines = [[c.name, c.value, c.target, "yes" if c.met else "NO"] for c in checks]
        out.append(_table(["memory target", "measured", "target", "met?"], check_lines))
    if notes:
        out += ["", "notes:"]
        out += [f"  - {note}" for note in notes]
    return "\n".join(out)


def render_profiles(summaries: dict[str, dict[str, list[tuple[str, float]]]]) -> str:
    out = []
    for name, summary in summaries.items():
        if not summary:
            out.append(f"profile {name}: no samples")
            continue
        samples = int(summary["samples"][0][1])
        out.append(f"profile {name} ({samples} samples, % of samples across all threads):")
        for kind in ("self", "inclusive"):
            out.append(f"  top {kind}:")
            out += [f"    {share:5.1f}%  {func}" for func, share in summary[kind]]
    return "\n".join(out)


def write_json(
    path: Path,
    facts: dict[str, Any],
    rows: list[Row],
    checks: list[Check],
    notes: list[str],
    profiles: dict[str, Any],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "facts": facts,
        "results": [{**asdict(row), "ratio": round(row.ratio, 4), "met": row.met} for row in rows],
        "memory_checks": [asdict(check) for check in checks],
        "all_targets_met": all(r.met for r in rows) and all(c.met for c in checks),
        "notes": notes,
        "profiles": profiles,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")

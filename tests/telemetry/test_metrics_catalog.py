"""metrics.toml is the one list of the gateway's metrics: each entry is made
into an instrument, and the README's Metrics table names each of them."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider

from gateway.telemetry.instruments import CATALOG, GatewayMetrics, HistogramTally, Tally

README = Path(__file__).resolve().parents[2] / "README.md"
# OpenTelemetry units as the Prometheus exporter spells them in a name.
UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes"}


def prometheus_name(name: str, unit: str, kind: str) -> str:
    exposed = name.replace(".", "_")
    suffix = UNIT_SUFFIX.get(unit, "")
    if suffix and not exposed.endswith(suffix):
        exposed += suffix
    return exposed + ("_total" if kind == "counter" else "")


def test_every_catalog_entry_is_an_instrument_of_the_gateway():
    metrics = GatewayMetrics(MeterProvider())
    declared = typing.get_type_hints(GatewayMetrics)
    recorded = {name for name, spec in CATALOG.items() if spec.kind != "gauge"}
    assert recorded == {name for name, hint in declared.items() if hint in (Tally, HistogramTally)}
    for name in recorded:
        expected = HistogramTally if CATALOG[name].kind == "histogram" else Tally
        assert isinstance(getattr(metrics, name), expected), name
    assert {h.name for h in metrics.histograms} == {
        spec.name for spec in CATALOG.values() if spec.kind == "histogram"
    }


def test_the_readme_lists_every_metric_of_the_catalog():
    section = README.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    catalog = {prometheus_name(s.name, s.unit, s.kind) for s in CATALOG.values()}
    assert listed == catalog

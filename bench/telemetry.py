"""The telemetry section: what traces and metrics cost when fully on.

Two gateways on the local backend, up at once: telemetry off, and telemetry
fully on: every request traced (OTEL_TRACES_SAMPLER=always_on) with spans
exported over OTLP http/protobuf to a loopback receiver (bench.otlp_sink, a
process of its own, as a collector would be), metrics exported there every
few seconds too, and the Prometheus listener up. The cells are the
authentication section's (bench.auth), measured against telemetry off: 4 KiB
Put and Get at the small-object concurrencies (target 0.9x ops/s), and a Put
and a Get of --size (target 0.97x MiB/s), with gateway and client CPU per op
or MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from bench import procs, servers
from bench.auth import AuthSection
from bench.auth_setup import Variant

SMALL_MIN_RATIO = 0.9
BIG_MIN_RATIO = 0.97
METRIC_EXPORT_INTERVAL_MS = 5000
SINK_WAIT_S = 30.0
# Set empty (the gateway ignores empty settings), so that OTEL_* variables of
# the bench's own environment cannot turn telemetry on in the "off" gateway.
_OTEL_UNSET = {
    name: ""
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
    )
}


class TelemetrySection(AuthSection):
    name = "telemetry"
    baseline = "off"
    small_min_ratio = SMALL_MIN_RATIO
    big_min_ratio = BIG_MIN_RATIO
    small_targets = frozenset({"on"})
    big_variants = ("off", "on")
    big_targets = frozenset({"on"})
    title = "Telemetry: fully on (traces 100% over OTLP, metrics) against off"

    _sink_url = ""

    def make_variants(self) -> list[Variant]:
        metrics_port = procs.free_port()
        on = {
            **_OTEL_UNSET,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self._sink_url,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_METRIC_EXPORT_INTERVAL": str(METRIC_EXPORT_INTERVAL_MS),
            "OTEL_SERVICE_NAME": "storagegw-bench",
            "GATEWAY_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        }
        return [
            Variant("off", "telemetry off", dict(_OTEL_UNSET)),
            Variant("on", "telemetry on", on),
        ]

    def run(self) -> None:
        port = procs.free_port()
        self._sink_url = f"http://127.0.0.1:{port}"
        log = self.data_dir / "otlp-sink.log"
        argv = [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]
        sink = self.processes.spawn(argv, servers.child_env({}), log)
        try:
            self._wait_for_sink(sink)
            super().run()
            # The gateway flushes its spans as it stops: the counts are final.
            received = self._sink_stats()
        finally:
            self.processes.stop(sink)
        traces = received.get("/v1/traces", {"requests": 0, "bytes": 0})
        metrics = received.get("/v1/metrics", {"requests": 0, "bytes": 0})
        self.notes.append(
            f"telemetry: the OTLP receiver got {traces['requests']:,} trace exports "
            f"({traces['bytes'] / 1024**2:,.1f} MiB of spans) and {metrics['requests']:,} "
            "metric exports"
        )
        if not traces["requests"]:
            self.failed.append("telemetry: no spans were exported")

    def setup_note(self) -> str:
        return (
            "telemetry: two gateways (local backend), both up at once, each cell run on both in "
            "turn; on: OTEL_TRACES_SAMPLER=always_on, spans (batch span processor) and metrics "
            f"(every {METRIC_EXPORT_INTERVAL_MS / 1000:g} s) exported over OTLP http/protobuf "
            "to a loopback receiver process (its CPU not counted), Prometheus listener up"
        )

    def _sink_stats(self) -> dict[str, dict[str, int]]:
        url = self._sink_url + "/stats"  # http://127.0.0.1:port, made above
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310
            stats: dict[str, dict[str, int]] = json.load(reply)
            return stats

    def _wait_for_sink(self, sink: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + SINK_WAIT_S
        while True:
            try:
                self._sink_stats()
                return
            except OSError:
                if sink.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the OTLP receiver did not start") from None
                time.sleep(0.1)

"""The sample Prometheus alert rules in deploy/prometheus/, checked by `promtool`
(Debian's prometheus package, which scripts/install-test-servers.sh installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

ALERT_RULES = REPO / "deploy" / "prometheus" / "storagegw-alerts.yaml"

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing: scripts/install-test-servers.sh installs Debian's prometheus",
)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


@promtool
def test_the_alert_rules_pass_promtool(tmp_path: Path) -> None:
    checked = run_promtool("check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        ALERT_RULES.read_text().replace("increase(storage_egress_bytes_total[1d])", "increase(")
    )
    refused = run_promtool("check", "rules", str(broken))
    assert refused.returncode != 0


@promtool
def test_the_egress_alert_fires_over_its_daily_threshold(tmp_path: Path) -> None:
    # promtool's rule unit test: two replicas' counters for one backend, 300 GiB a
    # day each (over the 500 GiB sample threshold together), another backend at
    # 100 GiB; the alert names the first backend only.
    gib = 1024**3
    per_minute = 300 * gib // 1440
    tests = {
        "rule_files": [str(ALERT_RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'storage_egress_bytes_total{backend="s3",instance="a"}',
                 "values": f"0+{per_minute}x1500"},
                {"series": 'storage_egress_bytes_total{backend="s3",instance="b"}',
                 "values": f"0+{per_minute}x1500"},
                {"series": 'storage_egress_bytes_total{backend="gcs",instance="a"}',
                 "values": f"0+{100 * gib // 1440}x1500"},
            ],
            "alert_rule_test": [
                {"eval_time": "12h", "alertname": "StorageEgressPerDayHigh", "exp_alerts": []},
                {"eval_time": "25h", "alertname": "StorageEgressPerDayHigh", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "backend": "s3"},
                    "exp_annotations": {
                        "summary": "Egress from backend s3 over 500 GiB in a day",
                        "description": "s3 served 600GiB over the last 24 hours through "
                        "the gateway's replicas (storage_egress_bytes_total).",
                    },
                }]},
            ],
        }],
    }  # fmt: skip
    unit = tmp_path / "egress_test.yaml"
    unit.write_text(yaml.safe_dump(tests))
    passed = run_promtool("test", "rules", str(unit))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # The same test against a threshold it does not reach fails: the test can fail.
    quiet = tmp_path / "quiet-alerts.yaml"
    quiet.write_text(ALERT_RULES.read_text().replace("> 500 *", "> 5000 *"))
    tests["rule_files"] = [str(quiet)]
    unit.write_text(yaml.safe_dump(tests))
    failed = run_promtool("test", "rules", str(unit))
    assert failed.returncode != 0

"""[buckets.NAME.scan]: what it sets, and the ConfigError naming each wrong
setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.scan_config import ScanSettings
from gateway.scanning.clamd import ClamdAddress, ClamdTimeouts

QUARANTINE = "[buckets.jail]\nbackend = 'memory'\n"


def scan_of(tmp_path: Path, table: str, extra: str = QUARANTINE) -> ScanSettings | None:
    path = tmp_path / "buckets.toml"
    path.write_text(f"[buckets.files]\nbackend = 'memory'\n[buckets.files.scan]\n{table}{extra}")
    return load({"GATEWAY_CONFIG": str(path)}).buckets["files"].scan


def test_the_settings_and_their_defaults(tmp_path: Path) -> None:
    scan = scan_of(tmp_path, "clamd = 'tcp://127.0.0.1:3310'\n")
    assert scan == ScanSettings(ClamdAddress("127.0.0.1", 3310))
    assert (scan.store_unscanned, scan.quarantine_bucket) == (False, None)
    assert scan.staging_prefix == ".storagegw-pending/"
    scan = scan_of(
        tmp_path,
        "clamd = 'unix:///run/clamd.sock'\nconnect_timeout = '2s'\nidle_timeout = '1m'\n"
        "verdict_timeout = '10m'\non_unavailable = 'store'\nquarantine_bucket = 'jail'\n"
        "staging_prefix = 'incoming/'\n",
    )
    assert scan == ScanSettings(
        ClamdAddress(path="/run/clamd.sock"),
        ClamdTimeouts(connect=2, idle=60, verdict=600),
        store_unscanned=True,
        quarantine_bucket="jail",
        staging_prefix="incoming/",
    )


def test_a_bucket_without_the_table_is_not_scanned(tmp_path: Path) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text("[buckets.files]\nbackend = 'memory'\n")
    assert load({"GATEWAY_CONFIG": str(path)}).buckets["files"].scan is None


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        ("", "buckets.files.scan.clamd"),
        ("clamd = 'localhost:3310'\n", "buckets.files.scan.clamd"),
        ("clamd = 'tcp://h:1'\nverdict_timeout = 'soon'\n", "buckets.files.scan.verdict_timeout"),
        ("clamd = 'tcp://h:1'\non_unavailable = 'ignore'\n", "buckets.files.scan.on_unavailable"),
        (
            "clamd = 'tcp://h:1'\nquarantine_bucket = 'nope'\n",
            "buckets.files.scan.quarantine_bucket",
        ),
        (
            "clamd = 'tcp://h:1'\nquarantine_bucket = 'files'\n",
            "buckets.files.scan.quarantine_bucket",
        ),
        ("clamd = 'tcp://h:1'\nstaging_prefix = ''\n", "buckets.files.scan.staging_prefix"),
        ("clamd = 'tcp://h:1'\nstaging_prefix = 'no-slash'\n", "buckets.files.scan.staging_prefix"),
        ("clamd = 'tcp://h:1'\nspeed = 'fast'\n", "buckets.files.scan"),
    ],
)
def test_a_wrong_setting_is_named(tmp_path: Path, table: str, setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        scan_of(tmp_path, table)
    assert caught.value.setting == setting

"""`storagegw cleanup` runs one pass of each kind of upkeep the buckets need,
as an operator's cron job would, beside a gateway whose periodic tasks are
off: a stale upload aborted, an object expired by a lifecycle rule the
gateway runs, a dedup blob no object names collected; `--only` picks the
passes, `--dry-run` deletes nothing and says what it would.

Time is driven by settings (an upload age and a dedup grace of a
millisecond) and, for the lifecycle's whole days, by an object whose
local header says it was written ten days ago."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway import lifecycle
from gateway.bucket_setup import build_buckets
from storagegw import Client
from storagegw.errors import UploadNotFound
from tests.conftest import CLI_PATH, RunningGateway, run_gateway
from tests.drivers import backend_env

CONFIG = """\
[buckets.photos]
backend = "local"
dedup = true

[buckets.scratch]
backend = "local"

[[buckets.scratch.lifecycle]]
prefix = "tmp/"
expire_after = 1
"""
LIVE = b"live bytes, named by an object " * 40
GARBAGE = b"bytes whose only object was deleted " * 40
OLD = b"written ten days ago" * 10
DAY_NS = 86400 * 1_000_000_000


@dataclass
class Site:
    running: RunningGateway
    client: Client
    env: dict[str, str]
    upload_id: str

    def cleanup(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI in its own process, as cron runs it: uploads older than a
        millisecond are stale, a blob unreferenced for as long is garbage."""
        ours = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GATEWAY_"))}
        return subprocess.run(
            [CLI_PATH, "cleanup", *args],
            env={
                **ours,
                **self.env,
                "GATEWAY_STALE_UPLOAD_AGE": "0.001",
                "GATEWAY_DEDUP_GRACE": "0.001",
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def keys(self, bucket: str) -> list[str]:
        return sorted(entry.key for entry in self.client.list(bucket=bucket))

    def blobs(self) -> int:
        return self.client.bucket_stats(bucket="photos").blobs

    def upload_left(self) -> bool:
        try:
            self.client.query_upload(self.upload_id)
        except UploadNotFound:
            return False
        return True


def _backdate(path: Path, days: int) -> None:
    """Make the local object file at path say it was last written `days`
    ago (its header's update time: what the lifecycle compares)."""
    data = path.read_bytes()
    stamp = re.search(rb'"update_time_ns":(\d+)', data)
    assert stamp is not None
    old = str(int(stamp.group(1)) - days * DAY_NS).encode()
    assert len(old) == len(stamp.group(1))
    path.write_bytes(data[: stamp.start(1)] + old + data[stamp.end(1) :])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = tmp_path / "buckets.toml"
    config.write_text(CONFIG)
    env = {
        "GATEWAY_CONFIG": str(config),
        "STORAGE_BASE_PATH": str(tmp_path),
        "STORAGE_URL_SECRET": "cleanup-passes-test-secret",
        # The gateway's own passes off: the CLI runs them.
        "GATEWAY_CLEANUP_INTERVAL": "0",
        "GATEWAY_DEDUP_SWEEP_INTERVAL": "0",
    }
    with run_gateway(env, tmp_path) as running, Client(running.target) as client:
        client.put_bytes("live", LIVE, bucket="photos")
        client.put_bytes("gone", GARBAGE, bucket="photos")
        client.delete("gone", bucket="photos")  # its blob: garbage
        for key in ("tmp/old", "keep/old", "tmp/young"):
            client.put_bytes(key, OLD, bucket="scratch")
        for key in ("tmp/old", "keep/old"):
            _backdate(tmp_path / "scratch" / "objects" / key, days=10)
        upload = client.start_upload("stale.bin", bucket="scratch", size=2 * len(OLD))
        client.write_upload(upload.upload_id, OLD, offset=0)
        yield Site(running, client, env, upload.upload_id)


def test_one_run_does_every_kind_of_upkeep(site: Site) -> None:
    assert site.blobs() == 2
    result = site.cleanup()
    assert result.returncode == 0, result.stderr
    assert "scratch: aborted 1 incomplete upload(s) older than " in result.stdout
    assert f"scratch: lifecycle expired 1 object(s) ({len(OLD)} bytes)" in result.stdout
    assert (
        f"photos: dedup sweep deleted 1 unreferenced blob(s), 0 temp object(s), 0 marker(s) "
        f"older than 0.001s ({len(GARBAGE)} bytes)" in result.stdout
    )
    assert not site.upload_left()
    assert site.keys("scratch") == ["keep/old", "tmp/young"]
    assert site.blobs() == 1
    assert site.client.get_bytes("live", bucket="photos") == LIVE
    assert site.env["STORAGE_URL_SECRET"] not in result.stdout + result.stderr


def test_only_runs_the_passes_named(site: Site) -> None:
    expiry = site.cleanup("--only", "lifecycle")
    assert expiry.returncode == 0, expiry.stderr
    assert "lifecycle expired 1 object(s)" in expiry.stdout
    assert "dedup" not in expiry.stdout
    assert "aborted" not in expiry.stdout
    assert site.keys("scratch") == ["keep/old", "tmp/young"]
    assert site.blobs() == 2
    assert site.upload_left()

    rest = site.cleanup("--only", "uploads,dedup")
    assert rest.returncode == 0, rest.stderr
    assert "scratch: aborted 1 incomplete upload(s)" in rest.stdout
    assert "photos: dedup sweep deleted 1 unreferenced blob(s)" in rest.stdout
    assert "lifecycle" not in rest.stdout
    assert not site.upload_left()
    assert site.blobs() == 1


def test_only_is_repeatable_and_checked(site: Site) -> None:
    repeated = site.cleanup("--only", "dedup", "--only", "uploads")
    assert repeated.returncode == 0, repeated.stderr
    assert "dedup sweep deleted 1" in repeated.stdout
    assert "aborted 1" in repeated.stdout
    assert site.keys("scratch") == ["keep/old", "tmp/old", "tmp/young"]

    wrong = site.cleanup("--only", "uploads,vacuum")
    assert wrong.returncode == 2
    assert "vacuum" in wrong.stderr
    assert site.keys("scratch") == ["keep/old", "tmp/old", "tmp/young"]


def test_a_dry_run_deletes_nothing_and_says_what_it_would(site: Site) -> None:
    result = site.cleanup("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"scratch: lifecycle would expire 1 object(s) ({len(OLD)} bytes)" in result.stdout
    assert (
        f"photos: dedup sweep would delete 1 unreferenced blob(s), 0 temp object(s), 0 marker(s) "
        f"older than 0.001s ({len(GARBAGE)} bytes)" in result.stdout
    )
    assert "scratch: would abort 1 incomplete upload(s) older than 0.001s" in result.stdout
    assert "photos: would abort 0 incomplete upload(s)" in result.stdout
    assert site.keys("scratch") == ["keep/old", "tmp/old", "tmp/young"]
    assert site.blobs() == 2
    assert site.upload_left()
    # What it said it would abort is what a run then aborts.
    done = site.cleanup("--only", "uploads")
    assert "scratch: aborted 1 incomplete upload(s) older than 0.001s" in done.stdout
    assert not site.upload_left()


def test_a_failed_pass_fails_the_run_and_the_others_still_run(
    site: Site, request: pytest.FixtureRequest
) -> None:
    # A dedup bucket with a lifecycle rule, on an S3 bucket that is not there:
    # each of its passes fails (the store says so at once).
    s3 = backend_env(request, "s3-moto")
    secret = s3["STORAGE_S3_SECRET_KEY"]
    config = Path(site.env["GATEWAY_CONFIG"])
    config.write_text(
        config.read_text() + '\n[buckets.broken]\nbackend = "s3"\nbucket = "no-such-bucket"\n'
        f'endpoint = "{s3["STORAGE_S3_ENDPOINT"]}"\naccess_key = "{s3["STORAGE_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{secret}"\nregion = "us-east-1"\naddressing_style = "path"\n'
        "dedup = true\n[[buckets.broken.lifecycle]]\nexpire_after = 1\nnative = false\n"
    )
    result = site.cleanup()
    assert result.returncode == 1, result.stdout
    for what in ("stale upload abort", "lifecycle expiry", "dedup sweep"):
        assert f"broken: {what} failed: " in result.stderr
    assert "photos: dedup sweep deleted 1 unreferenced blob(s)" in result.stdout
    assert "scratch: lifecycle expired 1 object(s)" in result.stdout
    assert "scratch: aborted 1 incomplete upload(s)" in result.stdout
    assert site.keys("scratch") == ["keep/old", "tmp/young"]
    assert site.blobs() == 1
    assert secret not in result.stdout + result.stderr


def test_the_gateways_own_upkeep_can_be_turned_off(tmp_path: Path) -> None:
    """GATEWAY_CLEANUP_INTERVAL=0: the first worker installs the native
    rules and returns, running no pass (the cron job's `storagegw cleanup` does)."""
    env = {"STORAGE_BACKEND": "local", "STORAGE_BASE_PATH": str(tmp_path)}
    config = config_module.load({**env, "GATEWAY_CLEANUP_INTERVAL": "0"})
    assert config.cleanup_interval == 0
    passes: list[str] = []

    async def abort_stale() -> None:
        passes.append("uploads")

    async def upkeep() -> None:
        buckets = build_buckets(config, (), None, None, None)
        plans = lifecycle.build_plans(config, buckets)
        # Bounded only so that a loop that never ends fails the test.
        await asyncio.wait_for(lifecycle.maintain_forever(buckets, plans, abort_stale, 0), 60)
        await buckets.close()

    asyncio.run(upkeep())
    assert passes == []

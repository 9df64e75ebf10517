"""Aborting unfinished uploads as a lifecycle rule: a bucket's own rule for
the whole bucket replaces GATEWAY_STALE_UPLOAD_AGE (its default rule) for
it, in `storagegw cleanup` and in the gateway's periodic cleanup."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI_PATH, run_gateway
from tests.drivers import backend_env


def _config(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """Two gateway buckets in one S3 bucket: `own` (prefix own/) with a rule
    aborting its uploads after a day, `plain` (prefix plain/) without."""
    s3 = (
        f'bucket = "{env["STORAGE_S3_BUCKET"]}"\nendpoint = "{env["STORAGE_S3_ENDPOINT"]}"\n'
        f'access_key = "{env["STORAGE_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{env["STORAGE_S3_SECRET_KEY"]}"\n'
        'region = "us-east-1"\naddressing_style = "path"\n'
    )
    path = tmp_path / "buckets.toml"
    path.write_text(
        f'[buckets.own]\nbackend = "s3"\nprefix = "own/"\n{s3}'
        "[[buckets.own.lifecycle]]\nabort_incomplete_uploads_after = 1\n"
        f'[buckets.plain]\nbackend = "s3"\nprefix = "plain/"\n{s3}'
    )
    # Every upload is stale by the default rule (as soon as it exists).
    return {
        "GATEWAY_CONFIG": str(path),
        "STORAGE_BASE_PATH": str(tmp_path),
        "GATEWAY_STALE_UPLOAD_AGE": "0.001",
    }


def _uploads(client: object, bucket: str) -> list[str]:
    found = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])  # type: ignore[attr-defined]
    return sorted(upload["Key"] for upload in found)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> tuple[dict[str, str], object]:
    env = backend_env(request, "s3-ceph")  # Ceph dates uploads now (moto: 2010)
    client = request.getfixturevalue("ceph_rgw").client()
    for key in ("own/young", "plain/young"):
        client.create_multipart_upload(Bucket=env["STORAGE_S3_BUCKET"], Key=key)
    return env, client


def test_cleanup_cli_keeps_a_bucket_by_its_own_rule(
    store: tuple[dict[str, str], object], tmp_path: Path
) -> None:
    env, client = store
    result = subprocess.run(
        [CLI_PATH, "cleanup"],
        env={**os.environ, **_config(tmp_path, env)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "own: aborted 0 incomplete upload(s) older than 86400s" in result.stdout
    assert "plain: aborted 1 incomplete upload(s) older than 0.001s" in result.stdout
    assert _uploads(client, env["STORAGE_S3_BUCKET"]) == ["own/young"]


def test_periodic_cleanup_keeps_a_bucket_by_its_own_rule(
    store: tuple[dict[str, str], object], tmp_path: Path
) -> None:
    env, client = store
    with run_gateway(_config(tmp_path, env), tmp_path) as running:
        running.run(running.gateway.cleanup_once())
        assert _uploads(client, env["STORAGE_S3_BUCKET"]) == ["own/young"]

"""Stale incomplete uploads: `storagegw cleanup` and the gateway's periodic task."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import CLI_PATH, backend_env, run_gateway
from tests.servers import s3_client

PREFIX = "gw/"


def _s3(env):
    return s3_client(
        env["STORAGE_S3_ENDPOINT"], env["STORAGE_S3_ACCESS_KEY"], env["STORAGE_S3_SECRET_KEY"]
    )


def _uploads(s3, bucket):
    return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _cleanup(env, *args):
    return subprocess.run(
        [CLI_PATH, "cleanup", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_aborts_only_old_uploads_under_the_gateway_prefix(request):
    env = {**backend_env(request, "s3-ceph"), "STORAGE_S3_PREFIX": PREFIX}
    bucket = env["STORAGE_S3_BUCKET"]
    s3 = _s3(env)
    s3.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}left-behind")
    s3.create_multipart_upload(Bucket=bucket, Key="not-ours")

    young = _cleanup(env, "--older-than", "1d")
    assert young.returncode == 0, young.stderr
    assert "aborted 0 incomplete upload(s)" in young.stdout
    assert _uploads(s3, bucket) == [f"{PREFIX}left-behind", "not-ours"]

    old = _cleanup(env, "--older-than", "0.001")
    assert old.returncode == 0, old.stderr
    assert "default: aborted 1 incomplete upload(s)" in old.stdout
    assert _uploads(s3, bucket) == ["not-ours"]


def test_cli_age_defaults_to_the_upload_lifetime(request):
    env = {**backend_env(request, "s3-moto"), "GATEWAY_UPLOAD_LIFETIME": "1d"}
    bucket = env["STORAGE_S3_BUCKET"]
    s3 = _s3(env)
    s3.create_multipart_upload(Bucket=bucket, Key="expired")  # moto dates it 2010
    result = _cleanup(env)
    assert result.returncode == 0, result.stderr
    assert "default: aborted 1 incomplete upload(s) older than 86400s" in result.stdout
    assert _uploads(s3, bucket) == []


def test_cli_refuses_a_bad_age(request):
    env = backend_env(request, "s3-moto")
    result = _cleanup(env, "--older-than", "soon")
    assert result.returncode == 2
    assert "--older-than" in result.stderr


def test_periodic_task_aborts_stale_uploads(request, tmp_path):
    env = {**backend_env(request, "s3-moto"), "GATEWAY_STALE_UPLOAD_AGE": "1h"}
    bucket = env["STORAGE_S3_BUCKET"]
    s3 = _s3(env)
    with run_gateway(env, tmp_path) as running:
        # moto dates every multipart upload in 2010, so this one counts as stale.
        s3.create_multipart_upload(Bucket=bucket, Key="stale")
        running.run(running.gateway.cleanup_once())
        assert _uploads(s3, bucket) == []


def test_periodic_task_defaults_to_the_upload_lifetime(request, tmp_path):
    env = {**backend_env(request, "s3-moto"), "GATEWAY_UPLOAD_LIFETIME": "2d"}
    bucket = env["STORAGE_S3_BUCKET"]
    s3 = _s3(env)
    with run_gateway(env, tmp_path) as running:
        assert running.gateway.config.stale_upload_age is None
        # Older than two days (moto dates it 2010): expired, so aborted (by
        # this call, or by the periodic task's first run if that came later).
        s3.create_multipart_upload(Bucket=bucket, Key="expired")
        assert "default" in running.run(running.gateway.cleanup_once())
        assert _uploads(s3, bucket) == []

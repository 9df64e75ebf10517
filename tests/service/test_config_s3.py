"""Configuration of S3 buckets: detected from a bucket or credentials, read from the
environment or the bucket file, and errors that name the setting."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load


def test_s3_auto_detected_from_bucket_or_credentials():
    config = load({"STORAGE_S3_BUCKET": "media", "STORAGE_S3_ENDPOINT": "http://127.0.0.1:9000"})
    (bucket,) = config.buckets.values()
    assert bucket.backend == "s3"
    assert bucket.s3 is not None
    assert (bucket.s3.bucket, bucket.s3.endpoint_url) == ("media", "http://127.0.0.1:9000")
    assert (
        load({"STORAGE_S3_ACCESS_KEY": "AK", "STORAGE_S3_BUCKET": "b"}).buckets["default"].backend
        == "s3"
    )
    # An explicit backend wins over detection.
    explicit = load({"STORAGE_BACKEND": "local", "STORAGE_S3_BUCKET": "media"})
    assert explicit.buckets["default"].backend == "local"


def test_s3_settings_from_environment():
    config = load(
        {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": "b",
            "STORAGE_S3_PREFIX": "tenant/",
            "STORAGE_S3_REGION": "eu-west-1",
            "STORAGE_S3_SECRET_KEY": "top-secret-value",
            "STORAGE_S3_ACCESS_KEY": "AKIA",
            "STORAGE_S3_ADDRESSING_STYLE": "path",
            "STORAGE_S3_PART_SIZE": "16MiB",
            "STORAGE_S3_CONCURRENCY": "8",
            "STORAGE_S3_SSE": "aws:kms",
            "STORAGE_S3_SSE_KMS_KEY_ID": "key-1",
        }
    )
    settings = config.buckets["default"].s3
    assert settings is not None
    assert settings.part_size == 16 << 20
    assert (settings.concurrency, settings.addressing_style) == (8, "path")
    assert (settings.prefix, settings.region) == ("tenant/", "eu-west-1")
    assert (settings.server_side_encryption, settings.kms_key_id) == ("aws:kms", "key-1")
    assert "top-secret-value" not in repr(config)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_S3_BUCKET"),
        ({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_PART_SIZE": "1MiB"}, "STORAGE_S3_PART_SIZE"),
        ({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_CONCURRENCY": "0"}, "STORAGE_S3_CONCURRENCY"),
        ({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_ENDPOINT": "minio:9000"}, "STORAGE_S3_ENDPOINT"),
        (
            {"STORAGE_S3_BUCKET": "b", "STORAGE_S3_ADDRESSING_STYLE": "x"},
            "STORAGE_S3_ADDRESSING_STYLE",
        ),
        ({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_PREFIX": "/abs"}, "STORAGE_S3_PREFIX"),
    ],
)
def test_bad_s3_settings_are_named(env, setting):
    with pytest.raises(ConfigError) as error:
        load(env)
    assert error.value.setting == setting


def test_s3_bucket_in_file(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(
        '[buckets.media]\nbackend = "s3"\nbucket = "acme"\nendpoint = "http://x:9000"\n'
        'part_size = "32MiB"\n'
        '[buckets.bad]\nbackend = "s3"\n'
    )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert error.value.setting == "buckets.bad.bucket"
    path.write_text(path.read_text().replace('[buckets.bad]\nbackend = "s3"\n', ""))
    settings = load({"GATEWAY_CONFIG": str(path)}).buckets["media"].s3
    assert settings is not None
    assert (settings.bucket, settings.part_size) == ("acme", 32 << 20)

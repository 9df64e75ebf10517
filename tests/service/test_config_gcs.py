"""Configuration of GCS buckets: detected from a bucket or credentials, read from the
environment or the bucket file, and errors that name the setting."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load


def test_gcs_auto_detected_from_bucket_or_credentials():
    config = load({"STORAGE_GCS_BUCKET": "media", "STORAGE_GCS_PROJECT": "acme"})
    (bucket,) = config.buckets.values()
    assert bucket.backend == "gcs"
    assert bucket.gcs is not None
    assert (bucket.gcs.bucket, bucket.gcs.project) == ("media", "acme")
    for credentials in ("STORAGE_GCS_CREDENTIALS_PATH", "GOOGLE_APPLICATION_CREDENTIALS"):
        detected = load({credentials: "/etc/sa.json", "STORAGE_GCS_BUCKET": "b"})
        settings = detected.buckets["default"].gcs
        assert settings is not None
        assert settings.credentials_path == "/etc/sa.json"
    # Credentials without a bucket: GCS is chosen, and the missing bucket named.
    with pytest.raises(ConfigError) as error:
        load({"GOOGLE_APPLICATION_CREDENTIALS": "/etc/sa.json"})
    assert error.value.setting == "STORAGE_GCS_BUCKET"
    # S3 settings come first; an explicit backend wins over detection.
    both = load({"STORAGE_S3_BUCKET": "s", "STORAGE_GCS_BUCKET": "g"})
    assert both.buckets["default"].backend == "s3"
    explicit = load({"STORAGE_BACKEND": "local", "STORAGE_GCS_BUCKET": "media"})
    assert explicit.buckets["default"].backend == "local"
    # The emulator alone is no reason to pick GCS.
    assert load({"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"}).buckets["default"].backend == "local"


def test_gcs_settings_from_environment():
    config = load(
        {
            "STORAGE_BACKEND": "gcs",
            "STORAGE_GCS_BUCKET": "b",
            "STORAGE_GCS_PREFIX": "tenant/",
            "STORAGE_GCS_CREDENTIALS_PATH": "/etc/own.json",
            "GOOGLE_APPLICATION_CREDENTIALS": "/etc/other.json",
            "STORAGE_EMULATOR_HOST": "127.0.0.1:4443",
            "STORAGE_GCS_SIGNING_ACCOUNT": "signer@p.iam.gserviceaccount.com",
            "STORAGE_GCS_CHUNK_SIZE": "16MiB",
            "STORAGE_GCS_THREADS": "4",
            "STORAGE_GCS_RETRY_DEADLINE": "30s",
            "STORAGE_GCS_STORAGE_CLASS": "NEARLINE",
            "STORAGE_GCS_KMS_KEY": "projects/p/locations/l/keyRings/r/cryptoKeys/k",
        }
    )
    settings = config.buckets["default"].gcs
    assert settings is not None
    assert (settings.prefix, settings.credentials_path) == ("tenant/", "/etc/own.json")
    assert (settings.emulator_host, settings.signing_account) == (
        "127.0.0.1:4443",
        "signer@p.iam.gserviceaccount.com",
    )
    assert (settings.chunk_size, settings.threads, settings.retry_deadline) == (16 << 20, 4, 30)
    assert (settings.storage_class, settings.kms_key.endswith("/k")) == ("NEARLINE", True)
    defaults = load({"STORAGE_GCS_BUCKET": "b"}).buckets["default"].gcs
    assert defaults is not None
    assert (defaults.chunk_size, defaults.threads, defaults.credentials_path) == (8 << 20, 16, None)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"STORAGE_BACKEND": "gcs"}, "STORAGE_GCS_BUCKET"),
        ({"STORAGE_GCS_BUCKET": "b", "STORAGE_GCS_CHUNK_SIZE": "100KiB"}, "STORAGE_GCS_CHUNK_SIZE"),
        (
            {"STORAGE_GCS_BUCKET": "b", "STORAGE_GCS_CHUNK_SIZE": "1000KiB"},
            "STORAGE_GCS_CHUNK_SIZE",
        ),
        ({"STORAGE_GCS_BUCKET": "b", "STORAGE_GCS_THREADS": "0"}, "STORAGE_GCS_THREADS"),
        (
            {"STORAGE_GCS_BUCKET": "b", "STORAGE_GCS_RETRY_DEADLINE": "x"},
            "STORAGE_GCS_RETRY_DEADLINE",
        ),
        ({"STORAGE_GCS_BUCKET": "b", "STORAGE_GCS_PREFIX": "/abs"}, "STORAGE_GCS_PREFIX"),
        ({"STORAGE_GCS_BUCKET": "b", "STORAGE_EMULATOR_HOST": "a b"}, "STORAGE_EMULATOR_HOST"),
    ],
)
def test_bad_gcs_settings_are_named(env, setting):
    with pytest.raises(ConfigError) as error:
        load(env)
    assert error.value.setting == setting


def test_gcs_bucket_in_file(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(
        '[buckets.media]\nbackend = "gcs"\nbucket = "acme"\nprefix = "m/"\nchunk_size = "32MiB"\n'
        '[buckets.bad]\nbackend = "gcs"\nbucket = "x"\nendpoint = "http://x"\n'
    )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert error.value.setting == "buckets.bad"  # endpoint is an S3 setting
    path.write_text(path.read_text().split("[buckets.bad]")[0])
    env = {
        "GATEWAY_CONFIG": str(path),
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443",
        "GOOGLE_APPLICATION_CREDENTIALS": "/etc/sa.json",
    }
    settings = load(env).buckets["media"].gcs
    assert settings is not None
    assert (settings.bucket, settings.prefix, settings.chunk_size) == ("acme", "m/", 32 << 20)
    # Google's process-wide variables apply to file buckets too.
    assert (settings.emulator_host, settings.credentials_path) == (
        "http://127.0.0.1:4443",
        "/etc/sa.json",
    )

"""Configuration: defaults, sizes, the bucket file, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load, parse_size


def test_defaults():
    config = load({})
    assert config.listen == "127.0.0.1:50051"
    assert config.http_listen == "127.0.0.1:8080"
    assert config.default_bucket == "default"
    (bucket,) = config.buckets.values()
    assert (bucket.backend, bucket.path) == ("local", Path("data") / "default")
    assert config.public_base_url == "http://127.0.0.1:8080"
    assert config.chunk_size == 1024 * 1024
    assert (config.max_streams, config.max_streams_per_connection) == (256, 100)
    assert config.max_buffered_bytes == 64 * 1024 * 1024


def test_stream_limits_from_environment():
    config = load(
        {
            "GATEWAY_MAX_STREAMS": "20",
            "GATEWAY_MAX_STREAMS_PER_CONNECTION": "8",
            "GATEWAY_MAX_BUFFERED_BYTES": "16MiB",
        }
    )
    assert (config.max_streams, config.max_streams_per_connection) == (20, 8)
    assert config.max_buffered_bytes == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("1MiB", 1 << 20), ("512 KiB", 512 << 10), ("2GB", 2 * 10**9),
     ("3g", 3 * 10**9), ("1TiB", 1 << 40), ("7b", 7)],
)  # fmt: skip
def test_parse_size(text, size):
    assert parse_size("X", text) == size


def test_secret_is_hidden_from_repr():
    config = load({"STORAGE_URL_SECRET": "0123456789abcdef-very-secret"})
    assert "very-secret" not in repr(config)


def test_bucket_file(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(
        'default_bucket = "media"\n'
        '[buckets.media]\nbackend = "local"\npath = "/srv/media"\n'
        '[buckets.scratch]\nbackend = "memory"\nquota = "1GiB"\n'
        '[buckets.plain]\n'
    )  # fmt: skip
    config = load({"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": "/var/sgw"})
    assert config.default_bucket == "media"
    assert config.buckets["media"].path == Path("/srv/media")
    assert config.buckets["scratch"].quota == 1 << 30
    assert config.buckets["plain"].path == Path("/var/sgw/plain")


@pytest.mark.parametrize(
    ("body", "setting"),
    [
        ("not toml [", "GATEWAY_CONFIG"),
        ("x = 1\n", "GATEWAY_CONFIG"),
        ('[buckets.a]\nbackend="x"\n', "buckets.a"),
        ('[buckets.ok1]\nbackend="tape"\n', "buckets.ok1.backend"),
        ('[buckets.ok1]\nbackend="memory"\nquota="lots"\n', "buckets.ok1.quota"),
        ('[buckets.ok1]\ncolour="blue"\n', "buckets.ok1"),
        ('default_bucket="nope"\n[buckets.ok1]\n', "GATEWAY_DEFAULT_BUCKET"),
    ],
)
def test_bad_bucket_file_names_the_setting(tmp_path, body, setting):
    path = tmp_path / "b.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert error.value.setting == setting
    assert str(error.value).startswith(f"{setting}: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORAGE_BACKEND", "floppy"),
        ("GATEWAY_LISTEN", "50051"),
        ("GATEWAY_HTTP_LISTEN", "host:port"),
        ("GATEWAY_CHUNK_SIZE", "1KiB"),
        ("GATEWAY_CHUNK_SIZE", "3MiB"),
        ("GATEWAY_MAX_MESSAGE_SIZE", "1MiB"),
        ("GATEWAY_MAX_OBJECT_SIZE", "big"),
        ("STORAGE_URL_SECRET", "short"),
        ("STORAGE_URL_EXPIRATION", "soon"),
        ("STORAGE_URL_EXPIRATION", "999999999"),
        ("GATEWAY_SHUTDOWN_GRACE", "0"),
        ("GATEWAY_HEALTH_INTERVAL", "-1"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("STORAGE_BASE_URL", "ftp://x"),
        ("GATEWAY_DEFAULT_BUCKET", "Bad_Name!"),
        ("GATEWAY_MAX_STREAMS", "0"),
        ("GATEWAY_MAX_STREAMS", "many"),
        ("GATEWAY_MAX_STREAMS_PER_CONNECTION", "-5"),
        ("GATEWAY_MAX_BUFFERED_BYTES", "lots"),
        ("GATEWAY_MAX_BUFFERED_BYTES", "1MiB"),  # below GATEWAY_MAX_MESSAGE_SIZE
    ],
)
def test_bad_settings_are_named(name, value):
    with pytest.raises(ConfigError) as error:
        load({name: value})
    assert error.value.setting == name


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


def test_max_unfinished_upload_bytes():
    assert load({}).max_unfinished_upload_bytes is None  # no cap by default
    config = load({"GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES": "2GiB"})
    assert config.max_unfinished_upload_bytes == 2 << 30
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES": "lots"})
    assert error.value.setting == "GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES"


def test_http_connection_bounds():
    config = load({})
    assert (config.http_keepalive_timeout, config.http_max_connections) == (15.0, 512)
    config = load({"GATEWAY_HTTP_KEEPALIVE_TIMEOUT": "0.5", "GATEWAY_HTTP_MAX_CONNECTIONS": "3"})
    assert (config.http_keepalive_timeout, config.http_max_connections) == (0.5, 3)


def test_http_linger_bounds():
    config = load({})
    assert (config.http_linger_bytes, config.http_linger_time) == (4 << 20, 2.0)
    config = load({"GATEWAY_HTTP_LINGER_BYTES": "64KiB", "GATEWAY_HTTP_LINGER_TIME": "5s"})
    assert (config.http_linger_bytes, config.http_linger_time) == (64 << 10, 5.0)
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_HTTP_LINGER_TIME": "soon"})
    assert error.value.setting == "GATEWAY_HTTP_LINGER_TIME"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_HTTP_KEEPALIVE_TIMEOUT", "0"),
        ("GATEWAY_HTTP_KEEPALIVE_TIMEOUT", "forever"),
        ("GATEWAY_HTTP_MAX_CONNECTIONS", "0"),
        ("GATEWAY_HTTP_MAX_CONNECTIONS", "many"),
    ],
)
def test_bad_http_connection_bounds_are_named(name, value):
    with pytest.raises(ConfigError) as error:
        load({name: value})
    assert error.value.setting == name


def test_per_bucket_unfinished_upload_caps(tmp_path):
    path = tmp_path / "buckets.toml"
    path.write_text(
        "[buckets.media]\nbackend = 'local'\nmax_unfinished_upload_bytes = '1GiB'\n"
        "[buckets.scratch]\nbackend = 'memory'\n"
        "[buckets.open]\nbackend = 'memory'\n"
    )
    config = load({"GATEWAY_CONFIG": str(path)})
    assert config.buckets["media"].max_unfinished_upload_bytes == 1 << 30
    assert config.unfinished_upload_caps() == {"media": 1 << 30}
    # The gateway-wide setting caps every bucket without its own.
    config = load({"GATEWAY_CONFIG": str(path), "GATEWAY_MAX_UNFINISHED_UPLOAD_BYTES": "2MiB"})
    assert config.unfinished_upload_caps() == {
        "media": 1 << 30,
        "scratch": 2 << 20,
        "open": 2 << 20,
    }
    path.write_text("[buckets.media]\nbackend = 'local'\nmax_unfinished_upload_bytes = 'lots'\n")
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert error.value.setting == "buckets.media.max_unfinished_upload_bytes"


def test_workers_from_environment_or_file(tmp_path):
    assert load({}).workers == 1
    assert load({"GATEWAY_WORKERS": "4"}).workers == 4
    path = tmp_path / "buckets.toml"
    path.write_text('workers = 3\n[buckets.files]\nbackend = "local"\n')
    assert load({"GATEWAY_CONFIG": str(path)}).workers == 3
    assert load({"GATEWAY_CONFIG": str(path), "GATEWAY_WORKERS": "2"}).workers == 2


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_worker_counts_are_named(value):
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_WORKERS": value})
    assert error.value.setting == "GATEWAY_WORKERS"


def test_workers_refuse_a_memory_bucket(tmp_path):
    assert load({"STORAGE_BACKEND": "memory", "GATEWAY_WORKERS": "1"}).workers == 1
    path = tmp_path / "buckets.toml"
    path.write_text('[buckets.files]\nbackend = "local"\n[buckets.scratch]\nbackend = "memory"\n')
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path), "GATEWAY_WORKERS": "2"})
    assert error.value.setting == "GATEWAY_WORKERS"
    assert "memory backend" in str(error.value)
    assert "scratch" in str(error.value)
    assert "files" not in str(error.value)


def test_sha256_choice_per_bucket_and_gateway_wide(tmp_path):
    path = tmp_path / "buckets.toml"
    path.write_text(
        "[buckets.media]\nbackend = 'local'\nsha256 = 'on_request'\n"
        "[buckets.ledger]\nbackend = 'memory'\nsha256 = 'always'\n"
        "[buckets.scratch]\nbackend = 'memory'\n"
    )
    config = load({"GATEWAY_CONFIG": str(path)})
    # The default, for a bucket that does not say: always (today's behaviour).
    assert config.sha256_choices() == {
        "media": "on_request",
        "ledger": "always",
        "scratch": "always",
    }
    # The gateway-wide setting decides for every bucket without its own.
    config = load({"GATEWAY_CONFIG": str(path), "GATEWAY_SHA256": "on_request"})
    assert config.sha256_choices() == {
        "media": "on_request",
        "ledger": "always",
        "scratch": "on_request",
    }
    # The single-bucket setup, from the environment alone.
    single = load({"STORAGE_BACKEND": "memory", "GATEWAY_SHA256": "On_Request"})
    assert single.sha256_choices() == {"default": "on_request"}


@pytest.mark.parametrize("value", ["sometimes", "", "true"])
def test_bad_sha256_choice_in_a_bucket_table_is_named(tmp_path, value):
    path = tmp_path / "buckets.toml"
    path.write_text(f"[buckets.media]\nbackend = 'local'\nsha256 = '{value}'\n")
    with pytest.raises(ConfigError, match="always or on_request") as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert error.value.setting == "buckets.media.sha256"


def test_bad_gateway_wide_sha256_choice_is_named():
    with pytest.raises(ConfigError, match="always or on_request") as error:
        load({"GATEWAY_SHA256": "never"})
    assert error.value.setting == "GATEWAY_SHA256"

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

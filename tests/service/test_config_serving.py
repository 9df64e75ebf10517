"""Configuration of how the gateway serves: unfinished-upload caps (gateway-wide and
per bucket), HTTP connection bounds, worker processes, and the SHA-256 choice; and
errors that name the setting."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load


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

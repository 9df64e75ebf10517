"""A bucket's compression settings, from its [buckets.NAME.compression] table
or the environment, and the driver a compressed bucket is built as."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.config import ConfigError
from gateway.layers.compression.backend import CompressingBackend
from gateway.layers.compression.settings import (
    DEFAULT_TYPES,
    CompressionSettings,
    env_compression,
    parse_compression,
)


def _load(tmp_path: Path, text: str) -> config_module.Config:
    path = tmp_path / "buckets.toml"
    path.write_text(text)
    return config_module.load({"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path)})


def test_a_table_makes_a_compressed_bucket(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "[buckets.logs]\nbackend = 'local'\n"
        "[buckets.logs.compression]\ntypes = ['application/json']\nmin_savings = 0.25\n"
        "level = 9\nframe_size = '256KiB'\n"
        "[buckets.plain]\nbackend = 'local'\n",
    )
    logs = config.buckets["logs"]
    assert logs.compression == CompressionSettings(("application/json",), 0.25, 9, 256 * 1024)
    assert isinstance(logs.build(), CompressingBackend)
    assert config.buckets["plain"].compression is None
    assert not isinstance(config.buckets["plain"].build(), CompressingBackend)


def test_an_empty_table_takes_the_defaults() -> None:
    settings = parse_compression("buckets.b.compression", {})
    assert settings == CompressionSettings()
    assert settings.types == DEFAULT_TYPES
    assert settings.compresses("application/json; charset=utf-8")
    assert settings.compresses("text/csv")
    assert settings.compresses("image/svg+xml")
    assert not settings.compresses("application/octet-stream")
    assert not settings.compresses("image/png")


def test_compressed_types_stay_out_whatever_the_patterns() -> None:
    settings = parse_compression("s", {"types": ["*/*"]})
    assert settings.compresses("application/octet-stream")
    for content_type in ("image/jpeg", "video/mp4", "application/zip", "application/gzip"):
        assert not settings.compresses(content_type)


@pytest.mark.parametrize(
    ("table", "setting"),
    [
        ({"types": "text/*"}, "s.types"),
        ({"types": ["text"]}, "s.types"),
        ({"min_savings": 1}, "s.min_savings"),
        ({"min_savings": -0.1}, "s.min_savings"),
        ({"min_savings": "a lot"}, "s.min_savings"),
        ({"level": 0}, "s.level"),
        ({"level": 23}, "s.level"),
        ({"frame_size": "1KiB"}, "s.frame_size"),
        ({"frame_size": "1GiB"}, "s.frame_size"),
        ({"frame": "1MiB"}, "s"),
    ],
)
def test_bad_settings_name_themselves(table: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_compression("s", table)
    assert caught.value.setting == setting


def test_the_environment_compresses_the_one_bucket(tmp_path: Path) -> None:
    assert env_compression({}) is None
    assert env_compression({"GATEWAY_COMPRESSION": "off"}) is None
    assert env_compression({"GATEWAY_COMPRESSION": "zstd"}) == CompressionSettings()
    settings = env_compression(
        {"GATEWAY_COMPRESSION": "zstd", "GATEWAY_COMPRESSION_TYPES": "text/*, application/json"}
    )
    assert settings is not None
    assert settings.types == ("text/*", "application/json")
    with pytest.raises(ConfigError):
        env_compression({"GATEWAY_COMPRESSION": "gzip"})
    config = config_module.load(
        {
            "STORAGE_BACKEND": "local",
            "STORAGE_BASE_PATH": str(tmp_path),
            "GATEWAY_COMPRESSION": "zstd",
        }
    )
    assert isinstance(config.buckets[config.default_bucket].build(), CompressingBackend)

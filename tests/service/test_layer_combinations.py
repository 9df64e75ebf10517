"""The bucket layers that do not compose (yet) are refused at start, naming
the setting: a dedup bucket that scans or compresses, and a CDN in front of a
bucket whose store holds references or compressed frames, not its objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load

BUNNY = (
    '[buckets.bkt.cdn]\nprovider = "bunny"\nbase_url = "https://z.b-cdn.net"\ntoken_key_env = "K"\n'
)
SCAN = '[buckets.bkt.scan]\nclamd = "tcp://127.0.0.1:3310"\n'


@pytest.mark.parametrize(
    ("extra", "setting", "words"),
    [
        ("dedup = true\n" + SCAN, "buckets.bkt.dedup", "scanning"),
        ("dedup = true\n[buckets.bkt.compression]\n", "buckets.bkt.dedup", "compresses"),
        ("dedup = true\n" + BUNNY, "buckets.bkt.cdn", "CDN"),
        ("[buckets.bkt.compression]\n" + BUNNY, "buckets.bkt.cdn", "CDN"),
    ],
)
def test_layers_that_do_not_compose_are_refused(
    tmp_path: Path, extra: str, setting: str, words: str
) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text('[buckets.bkt]\nbackend = "memory"\n' + extra)
    with pytest.raises(ConfigError) as caught:
        load({"GATEWAY_CONFIG": str(path), "K": "secret"})
    assert caught.value.setting == setting
    assert words in str(caught.value)


def test_the_environment_bucket_cannot_both_dedup_and_compress() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"STORAGE_BACKEND": "memory", "STORAGE_DEDUP": "true", "GATEWAY_COMPRESSION": "zstd"})
    assert caught.value.setting == "STORAGE_DEDUP"


def test_each_layer_alone_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text(
        '[buckets.dd1]\nbackend = "memory"\ndedup = true\n'
        '[buckets.zz1]\nbackend = "memory"\n[buckets.zz1.compression]\n'
        + BUNNY.replace("buckets.bkt", "buckets.cdn1")
        + '[buckets.cdn1]\nbackend = "memory"\n'
    )
    config = load({"GATEWAY_CONFIG": str(path), "K": "secret"})
    assert config.buckets["dd1"].dedup
    assert config.buckets["zz1"].compression is not None
    assert config.buckets["cdn1"].cdn is not None

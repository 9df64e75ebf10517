"""[[buckets.NAME.lifecycle]] as the configuration reads it, and the
errors that name the field at fault."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway import lifecycle
from gateway.bucket_setup import build_buckets
from gateway.core.lifecycle_plan import Enforcement
from gateway.domain.lifecycle import DAY
from gateway.domain.settings import ConfigError
from tests.conftest import CLI_PATH


def _load(tmp_path: Path, text: str, **env: str) -> config_module.Config:
    path = tmp_path / "buckets.toml"
    path.write_text(text)
    return config_module.load(
        {"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path), **env}
    )


def _plans(config: config_module.Config) -> dict[str, lifecycle.BucketLifecycle]:
    return lifecycle.build_plans(config, build_buckets(config, (), None, None, None))


def test_rules_are_read_with_their_ages_in_days(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[buckets.logs]\nbackend = "local"\n'
        '[[buckets.logs.lifecycle]]\nid = "tmp"\nprefix = "tmp/"\nexpire_after = 7\n'
        '[[buckets.logs.lifecycle]]\nprefix = "old/"\nexpire_after = 30\nnative = false\n',
    )
    rules = config.buckets["logs"].lifecycle
    assert rules is not None
    assert [(r.id, r.prefix, r.expire_after, r.native) for r in rules] == [
        ("tmp", "tmp/", 7 * DAY, True),
        ("rule-2", "old/", 30 * DAY, False),
    ]


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ("expire_after = -1", "lifecycle[0].expire_after", "at least 1 day"),
        ("expire_after = 0", "lifecycle[0].expire_after", "at least 1 day"),
        ("expire_after = 1.5", "lifecycle[0].expire_after", "whole number of days"),
        ('expire_after = "7d"', "lifecycle[0].expire_after", "whole number of days"),
        ('prefix = "a/"', "lifecycle[0]", "says nothing to do"),
        ("expires = 3", "lifecycle[0]", "unknown setting(s) expires"),
        (
            'transition_after = 30\nstorage_class = "GLACIER"',
            "lifecycle[0].transition_after",
            "S3 only",
        ),
        ('native = "yes"\nexpire_after = 1', "lifecycle[0].native", "true or false"),
        ('id = "a b"\nexpire_after = 1', "lifecycle[0].id", "A-Z"),
    ],
)
def test_a_bad_rule_names_its_field(tmp_path: Path, rule: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, f'[buckets.box]\nbackend = "local"\n[[buckets.box.lifecycle]]\n{rule}\n')
    assert raised.value.setting == f"buckets.box.{field}"
    assert message in str(raised.value)


def test_s3_transition_needs_its_storage_class(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(
            tmp_path,
            '[buckets.box]\nbackend = "s3"\nbucket = "x"\n'
            "[[buckets.box.lifecycle]]\ntransition_after = 30\n",
        )
    assert raised.value.setting == "buckets.box.lifecycle[0].storage_class"


def test_overlapping_rules_that_do_the_same_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(
            tmp_path,
            '[buckets.box]\nbackend = "local"\n'
            '[[buckets.box.lifecycle]]\nprefix = "logs/"\nexpire_after = 30\n'
            '[[buckets.box.lifecycle]]\nprefix = "logs/debug/"\nexpire_after = 3\n',
        )
    assert raised.value.setting == "buckets.box.lifecycle[1].prefix"
    assert "overlaps rule 0" in str(raised.value)


def test_a_rule_inside_a_reserved_prefix_stops_the_start(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[buckets.box]\nbackend = "local"\n[[buckets.box.lifecycle]]\nprefix = ".cas/"\n'
        "expire_after = 3\n",
    )
    with pytest.raises(ConfigError) as raised:
        _plans(config)
    assert raised.value.setting == "buckets.box.lifecycle[0].prefix"
    assert "reserved" in str(raised.value)


def test_a_prefixed_abort_on_a_store_without_lifecycle_stops_the_start(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[buckets.box]\nbackend = "local"\n[[buckets.box.lifecycle]]\nprefix = "in/"\n'
        "abort_incomplete_uploads_after = 2\n",
    )
    with pytest.raises(ConfigError) as raised:
        _plans(config)
    assert raised.value.setting == "buckets.box.lifecycle[0].abort_incomplete_uploads_after"


def test_the_stale_upload_age_is_the_default_abort_rule(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[buckets.plain]\nbackend = "local"\n[buckets.own]\nbackend = "local"\n'
        "[[buckets.own.lifecycle]]\nabort_incomplete_uploads_after = 2\n",
        GATEWAY_STALE_UPLOAD_AGE="12h",
    )
    plans = _plans(config)
    assert plans["plain"].abort_age == 12 * 3600
    (default,) = plans["plain"].rules
    assert default.rule.id == "default-abort"
    assert default.enforcement is Enforcement.GATEWAY
    # A bucket's own rule for the whole bucket replaces it.
    assert plans["own"].abort_age == 2 * DAY
    assert [r.rule.id for r in plans["own"].rules] == ["rule-1"]


def test_a_whole_bucket_expiry_on_s3_is_the_gateways(tmp_path: Path) -> None:
    """A store's rule cannot leave out the gateway's records: the task can."""
    config = _load(
        tmp_path,
        '[buckets.box]\nbackend = "s3"\nbucket = "x"\n'
        "[[buckets.box.lifecycle]]\nexpire_after = 30\n"
        '[[buckets.box.lifecycle]]\nprefix = "logs/"\ntransition_after = 10\n'
        'storage_class = "GLACIER"\n',
    )
    placed = {r.rule.id: r for r in _plans(config)["box"].rules}
    assert placed["rule-1"].enforcement is Enforcement.GATEWAY
    assert "reserved" in placed["rule-1"].reason
    assert placed["rule-2"].enforcement is Enforcement.NATIVE


def test_the_gateway_does_not_start_with_a_rule_no_one_can_enforce(tmp_path: Path) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text(
        '[buckets.box]\nbackend = "local"\n[[buckets.box.lifecycle]]\nprefix = ".cas/"\n'
        "expire_after = 3\n"
    )
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(path),
        "STORAGE_BASE_PATH": str(tmp_path),
        "GATEWAY_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
    }
    result = subprocess.run(
        [CLI_PATH, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "buckets.box.lifecycle[0].prefix: '.cas/' is reserved for the gateway" in result.stderr

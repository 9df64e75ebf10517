"""`storagegw lifecycle show` against a running gateway, and the access
policy, which grants it as an administrative call on the whole bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from storagegw import cli
from storagegw._cli_commands import EXIT_PERMISSION
from tests.access_e2e.tenants import OPS, A, policy_gateway
from tests.conftest import run_gateway

CONFIG = """
[buckets.data]
backend = "local"
[[buckets.data.lifecycle]]
id = "tmp"
prefix = "tmp/"
expire_after = 7
"""

GRANTS = """
[[grants]]
principals = ["ops"]
actions = ["admin", "read", "list"]
buckets = ["*"]

[[grants]]
principals = ["tenant-a"]
actions = ["read", "write", "list"]
buckets = ["*"]
"""


def test_show_prints_the_rules_and_what_enforces_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "buckets.toml"
    config.write_text(CONFIG)
    env = {"GATEWAY_CONFIG": str(config), "GATEWAY_STALE_UPLOAD_AGE": "2d"}
    with run_gateway(env, tmp_path) as running:
        assert cli.main(["--target", running.target, "lifecycle", "show"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "bucket data",
        "  tmp: prefix 'tmp/': expire after 7d: by gateway task "
        "(a local bucket has no lifecycle configuration of its own)",
        "  default-abort: prefix '': abort incomplete uploads after 2d: by gateway task "
        "(GATEWAY_STALE_UPLOAD_AGE)",
    ]


def test_the_policy_grants_show_to_admins_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "buckets.toml"
    config.write_text(CONFIG)
    with policy_gateway({"GATEWAY_CONFIG": str(config)}, tmp_path, GRANTS) as running:
        monkeypatch.setenv("STORAGEGW_TOKEN", A.key)
        refused = cli.main(["--target", running.target, "lifecycle", "show"])
        assert "may not admin '' in bucket 'data'" in capsys.readouterr().err
        monkeypatch.setenv("STORAGEGW_TOKEN", OPS.key)
        allowed = cli.main(["--target", running.target, "lifecycle", "show"])
        assert "tmp: prefix 'tmp/'" in capsys.readouterr().out
    assert (refused, allowed) == (EXIT_PERMISSION, 0)

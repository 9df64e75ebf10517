"""The suite's xdist groups hold: tests marked with one xdist_group run on one
worker under `--dist loadgroup` (pyproject.toml's addopts), as tests/big_data.py
and the container image's tests rely on. A pytest or pytest-xdist release that
breaks it (pytest-dev/pytest-xdist#1386) fails here, not as a rare clash of
two heavy tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PYTEST = (sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider")
PROBE = """
import json, os
import pytest

GROUPED = pytest.mark.xdist_group("together")

@pytest.mark.parametrize("n", range(6))
@GROUPED
def test_grouped(n):
    with open(os.environ["WORKERS_SEEN"], "a") as seen:
        seen.write(json.dumps(["grouped", os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_free(n):
    with open(os.environ["WORKERS_SEEN"], "a") as seen:
        seen.write(json.dumps(["free", os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
"""


def test_grouped_tests_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    seen = tmp_path / "seen.jsonl"
    # The repository's own settings (its addopts), on a suite of two kinds of test.
    result = subprocess.run(
        [*PYTEST, "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
        env={"WORKERS_SEEN": str(seen), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = [json.loads(line) for line in seen.read_text().splitlines()]
    grouped = {worker for kind, worker in runs if kind == "grouped"}
    free = {worker for kind, worker in runs if kind == "free"}
    assert len(runs) == 12
    assert len(grouped) == 1, runs
    # Both workers ran something: the grouping, not a lone worker, kept them together.
    assert free | grouped == {"gw0", "gw1"}, runs

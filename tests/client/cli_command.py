"""The `storagegw` command as the tests run it: where it is installed, and one
run of it against a gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CLI = str(REPO / ".venv" / "bin" / "storagegw")
if not Path(CLI).exists():  # installed elsewhere (e.g. a system-wide pip install)
    CLI = str(Path(sys.executable).with_name("storagegw"))


def run(
    target: str, *args: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """The command with --target target and args; with check, it must succeed."""
    result = subprocess.run(
        [CLI, "--target", target, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result

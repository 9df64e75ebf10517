"""The reader of README.md as tests/project/test_readme.py plays them: the addresses and
API key the examples name, the PATH the README's `export PATH=...` line gives, and a
directory with the files the examples start from."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway.access.api_keys import hash_key
from tests.conftest import REPO, RunningGateway
from tests.project.readme_blocks import README

README_TARGET = "127.0.0.1:50051"
README_HTTP = "127.0.0.1:8080"
README_HEALTH = "127.0.0.1:8081"
README_API_KEY = "sgw_readme-key-of-tenant-a-0123456789"
# The policy of the blocks that send a bearer token: the README's own example
# grant (tenants/{principal}/), on every bucket, and tenant-a's API key.
README_POLICY = f"""
[[api_keys]]
principal = "tenant-a"
sha256 = "{hash_key(README_API_KEY)}"

[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list", "sign"]
buckets = ["*"]
prefixes = ["tenants/{{principal}}/"]
"""
_PATH_LINE = re.compile(r'`(export PATH="[^`]+")`')


def readme_path() -> str:
    """PATH after the README's own `export PATH=...` line, run from the repository root
    (and with the repository's tool directories first removed from ours)."""
    lines = _PATH_LINE.findall(README.read_text())
    assert len(lines) == 1, f"expected one `export PATH=...` line in README.md, got {lines}"
    ours = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not entry.startswith((str(REPO / ".venv"), str(REPO / "node_modules")))
    ]
    result = subprocess.run(
        ["bash", "-c", f'{lines[0]} && printf %s "$PATH"'],
        cwd=REPO,
        env={**os.environ, "PATH": os.pathsep.join(ours)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@dataclass
class Reader:
    """A gateway and a directory with the files the README's examples start from."""

    gateway: RunningGateway
    directory: Path
    env: dict[str, str]

    def localize(self, text: str) -> str:
        http = self.gateway.http_url.removeprefix("http://")
        listener = self.gateway.gateway.health_listener
        health = f"127.0.0.1:{listener.port}" if listener is not None else README_HEALTH
        return (
            text.replace(README_TARGET, self.gateway.target)
            .replace(README_HTTP, http)
            .replace(README_HEALTH, health)
        )


def write_inputs(directory: Path) -> None:
    """The reader's own files, as the examples name them."""
    (directory / "report.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(20_000))
    (directory / "src").mkdir()
    (directory / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (directory / "file.bin").write_bytes(os.urandom(100_000))
    (directory / "intro.mp4").write_bytes(os.urandom(3 * 1024 * 1024))
    # Over the client's 8 MiB resumable threshold, as the README says of it.
    (directory / "dvd.iso").write_bytes(os.urandom(9 * 1024 * 1024))
    (directory / "big.iso").write_bytes(os.urandom(5 * 1024 * 1024))

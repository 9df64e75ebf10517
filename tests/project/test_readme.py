"""Every fenced code block of README.md is run as a reader would run it, and must work.

- `console` blocks run in bash (`set -euo pipefail`), one command per `$ ` prompt
  (a command goes on while the shell says it is incomplete); the lines a block shows
  after a command are that command's output (stdout and stderr), where `...` stands
  for anything and runs of whitespace for any whitespace.
- `python` blocks run in a fresh interpreter of the virtualenv.
- `javascript` blocks run in node, in a project of the reader's own: a directory with
  the packages clients/node installs (its node_modules) and a copy of proto/.
- `toml` blocks are bucket configurations: they are loaded with `GATEWAY_CONFIG`;
  those with `[[grants]]` are policy files, loaded as `GATEWAY_POLICY` is.
- `json` and `proto` blocks are parsed.
- `clamd` blocks are clamd.conf lines: they must be the settings the tests' own
  clamd runs with (tests/clamd_server.py SINGLE_PASS_CONFIG), which clamd accepts.

Each block gets a fresh gateway (local default bucket, plus a memory bucket `archive`
for the CLI's `bucket:key` example) and a scratch directory holding the files the
examples treat as the reader's own, certificates included (`ca.pem`, `server.pem`,
`client.pem`...: tests/transport/pki.py). A block that passes `-cacert` gets a
gateway serving TLS with them, client certificates required, as the README's TLS
section says; one that sends `authorization: Bearer` gets TLS without client
certificates and a policy confining tenant-a, whose API key is in `STORAGEGW_TOKEN`, to
`tenants/tenant-a/`. The gateway listens on free ports rather than on the README's
127.0.0.1:50051, :8080 and :8081 (its health-only listener; other gateways may hold
those), so blocks run with those addresses replaced, and the CLI gets its target from
`STORAGEGW_TARGET`.
PATH is the one the README's `export PATH=...` line gives, from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storagegw import Client
from tests.clamd_server import SINGLE_PASS_CONFIG
from tests.conftest import REPO, run_gateway
from tests.project.readme_blocks import BLOCKS, Block
from tests.project.readme_reader import (
    README_API_KEY,
    README_POLICY,
    Reader,
    readme_path,
    write_inputs,
)
from tests.project.readme_runners import (
    load_toml,
    output_pattern,
    parse_proto,
    run_console,
    run_javascript,
    run_python,
)
from tests.transport.pki import Pki

RUNNABLE = ("console", "python", "javascript", "toml", "json", "proto", "clamd")


@pytest.fixture
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reader]:
    home = tmp_path / "reader"
    home.mkdir()
    write_inputs(home)
    pki = Pki(home)
    block = getattr(request.node, "callspec", None) and request.node.callspec.params.get("block")
    text = block.text if isinstance(block, Block) else ""
    bearer = "authorization: Bearer" in text
    tls = bearer or "-cacert" in text
    buckets = tmp_path / "buckets.toml"
    buckets.write_text(
        f'default_bucket = "default"\n'
        f'[buckets.default]\nbackend = "local"\npath = "{tmp_path / "data" / "default"}"\n'
        f'[buckets.archive]\nbackend = "memory"\n'
    )
    settings = {"GATEWAY_CONFIG": str(buckets), "STORAGE_URL_SECRET": "readme-test-secret-0123"}
    served = {**settings, "GATEWAY_HEALTH_LISTEN": "127.0.0.1:0"}
    if bearer:  # TLS, and tenant-a's API key in $STORAGEGW_TOKEN
        policy = tmp_path / "policy.toml"
        policy.write_text(README_POLICY)
        served |= {**pki.env(), "GATEWAY_POLICY": str(policy)}
    elif tls:
        served |= pki.mtls_env()
    with run_gateway(served, tmp_path / "data") as running:
        upload_id = ""
        if not tls:
            with Client(running.target) as client:
                # What `put --resume` printed before the reader pressed Ctrl-C.
                upload_id = client.start_upload("media/dvd.iso").upload_id
        env = {
            **os.environ,
            **settings,
            "STORAGE_BASE_PATH": str(tmp_path / "data"),
            "GATEWAY_LISTEN": "127.0.0.1:0",
            "GATEWAY_HTTP_LISTEN": "127.0.0.1:0",
            "PATH": readme_path(),
            "STORAGEGW_TARGET": running.target,
            "ID": upload_id,
            **({"STORAGEGW_TOKEN": README_API_KEY} if bearer else {}),
        }
        yield Reader(running, home, env)


# ---------------------------------------------------------------- the tests


def test_every_block_is_in_a_language_the_test_runs():
    assert len(BLOCKS) >= 8, "README.md lost its examples?"
    untested = [block.name for block in BLOCKS if block.language not in RUNNABLE]
    assert not untested, f"README.md blocks no test runs (tag them {RUNNABLE}): {untested}"


def test_the_path_line_puts_the_tools_on_path():
    path = readme_path()
    for tool, where in (
        ("grpcurl", REPO / ".venv" / "bin"),
        ("buf", REPO / "node_modules" / ".bin"),
        ("storagegw", REPO / ".venv" / "bin"),
    ):
        found = subprocess.run(
            ["bash", "-c", f"command -v {tool}"],
            env={**os.environ, "PATH": path},
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        assert Path(found) == where / tool, (tool, found)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if block.language == "console":
        run_console(block, request.getfixturevalue("reader"))
    elif block.language == "python":
        run_python(block, request.getfixturevalue("reader"))
    elif block.language == "javascript":
        run_javascript(block, request.getfixturevalue("reader"))
    elif block.language == "toml":
        load_toml(block, tmp_path)
    elif block.language == "json":
        json.loads(block.text)
    elif block.language == "proto":
        parse_proto(block, tmp_path)
    elif block.language == "clamd":
        settings = [line for line in block.text.splitlines() if line.strip()]
        settings = [line for line in settings if not line.lstrip().startswith("#")]
        assert tuple(settings) == SINGLE_PASS_CONFIG, f"README.md line {block.line}"
    else:
        pytest.fail(f"README.md line {block.line}: no runner for {block.language!r} blocks")


def test_output_pattern_is_strict_where_the_readme_shows_output():
    # The matcher itself: `...` and whitespace are the only freedoms it takes.
    pattern = output_pattern(['{ "status": "SERVING" }'])
    assert pattern.fullmatch('{\n  "status": "SERVING"\n}\n')
    assert not pattern.fullmatch('{\n  "status": "NOT_SERVING"\n}\n')
    assert not output_pattern(["PRE docs/"]).fullmatch("PRE backups/\nPRE docs/\n")
    assert output_pattern(["upload id: ..."]).fullmatch("upload id: abc\n")

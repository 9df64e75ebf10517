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
PATH is the one the README's `export PATH=...` line gives, from the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpc_tools import protoc

from gateway import config as config_module
from gateway.access.api_keys import hash_key
from gateway.access.policy import Policy
from storagegw import Client
from tests.cdn.cdn_gateways import readme_cdn_secrets
from tests.clamd_server import SINGLE_PASS_CONFIG
from tests.conftest import REPO, RunningGateway, run_gateway
from tests.transport.pki import Pki

README = REPO / "README.md"
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
BLOCK_TIMEOUT = 120  # seconds; every block takes a few here
RUNNABLE = ("console", "python", "javascript", "toml", "json", "proto", "clamd")
NODE_MODULES = REPO / "clients" / "node" / "node_modules"
_FENCE = re.compile(r"^```(\S*)\s*$")
_PATH_LINE = re.compile(r'`(export PATH="[^`]+")`')


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based

    @property
    def name(self) -> str:
        return f"{self.language or 'untagged'}-line{self.line}"


def readme_blocks() -> list[Block]:
    blocks = []
    language: str | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(README.read_text().splitlines(), 1):
        match = _FENCE.match(line)
        if language is None and match:
            language, body, start = match.group(1), [], number
        elif language is not None and line.rstrip() == "```":
            blocks.append(Block(language, "\n".join(body) + "\n", start))
            language = None
        elif language is not None:
            body.append(line)
    assert language is None, f"README.md: the code block at line {start} is never closed"
    return blocks


BLOCKS = readme_blocks()


# ---------------------------------------------------------------- the reader's setup


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


def _write_inputs(directory: Path) -> None:
    """The reader's own files, as the examples name them."""
    (directory / "report.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(20_000))
    (directory / "src").mkdir()
    (directory / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (directory / "file.bin").write_bytes(os.urandom(100_000))
    (directory / "intro.mp4").write_bytes(os.urandom(3 * 1024 * 1024))
    # Over the client's 8 MiB resumable threshold, as the README says of it.
    (directory / "dvd.iso").write_bytes(os.urandom(9 * 1024 * 1024))
    (directory / "big.iso").write_bytes(os.urandom(5 * 1024 * 1024))


@pytest.fixture
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reader]:
    home = tmp_path / "reader"
    home.mkdir()
    _write_inputs(home)
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


# ---------------------------------------------------------------- console blocks


@dataclass
class Command:
    text: str
    shown: list[str]  # the output lines the README shows after it


def _complete(command: str) -> bool:
    if command.endswith("\\"):
        return False
    check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, check=False)
    return check.returncode == 0


def console_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        if pending is not None:
            pending.append(line)
            if _complete("\n".join(pending)):
                commands.append(Command("\n".join(pending), []))
                pending = None
        elif line.startswith("$ "):
            pending = [line[2:]]
            if _complete(line[2:]):
                commands.append(Command(line[2:], []))
                pending = None
        elif line.strip() and not line.startswith("#"):
            assert commands, f"output before any command: {line!r}"
            commands[-1].shown.append(line)
    assert pending is None, f"incomplete command: {pending}"
    return commands


def output_pattern(shown: list[str]) -> re.Pattern[str]:
    """The shown lines as a regex: `...` is anything, whitespace any whitespace."""
    parts = []
    for token in re.split(r"(\.\.\.|\s+)", "\n".join(shown)):
        if token == "...":
            parts.append(".*?")
        elif token.isspace():
            parts.append(r"\s*")
        else:
            parts.append(re.escape(token))
    return re.compile(r"\s*" + "".join(parts) + r"\s*", re.DOTALL)


_MARK = "@@readme-command@@"


def run_console(block: Block, reader: Reader) -> None:
    commands = console_commands(reader.localize(block.text))
    assert commands, "a console block with no command"
    script = ["set -euo pipefail", "exec 2>&1"]
    for number, command in enumerate(commands):
        # On a line of its own even after output with no final newline.
        script += [f"printf '\\n%s\\n' '{_MARK} {number}'", command.text]
    try:
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=reader.directory,
            env=reader.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        shown = expired.stdout.decode(errors="replace") if expired.stdout else ""
        pytest.fail(
            f"README.md line {block.line}: still running after {BLOCK_TIMEOUT} s (a server? "
            f"keep commands that never end out of code blocks):\n{shown}"
        )
    outputs = re.split(rf"\n{_MARK} \d+\n", result.stdout, flags=re.MULTILINE)[1:]
    ran = len(outputs)
    assert result.returncode == 0, (
        f"README.md line {block.line}: `{commands[ran - 1].text}` failed "
        f"(exit {result.returncode}):\n{outputs[-1] if outputs else result.stdout}"
    )
    assert ran == len(commands)
    for command, output in zip(commands, outputs, strict=True):
        if command.shown:
            assert output_pattern(command.shown).fullmatch(output), (
                f"README.md line {block.line}: `{command.text}` printed\n{output}\n"
                f"where the README shows\n" + "\n".join(command.shown)
            )


# ---------------------------------------------------------------- other languages


def run_python(block: Block, reader: Reader) -> None:
    script = reader.directory / f"readme_line{block.line}.py"
    script.write_text(reader.localize(block.text))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=reader.directory,
        env=reader.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"README.md line {block.line}:\n{result.stderr}"


def run_javascript(block: Block, reader: Reader) -> None:
    node = shutil.which("node", path=reader.env["PATH"])
    if node is None:
        pytest.skip("node is not installed (Node.js >= 18)")
    assert NODE_MODULES.is_dir(), "clients/node/node_modules is missing: run `make setup`"
    project = reader.directory / "node-project"
    project.mkdir()
    (project / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    shutil.copytree(REPO / "proto", project / "proto")
    script = project / f"readme_line{block.line}.js"
    script.write_text(reader.localize(block.text))
    result = subprocess.run(
        [node, str(script)],
        cwd=project,
        env=reader.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"README.md line {block.line}:\n{result.stderr}"


def load_toml(block: Block, tmp_path: Path) -> None:
    document = tomllib.loads(block.text)
    path = tmp_path / "readme.toml"
    path.write_text(block.text)
    if "grants" in document:  # a policy file (GATEWAY_POLICY)
        policy = Policy.load(path)
        assert len(policy.grants) == len(document["grants"])
        assert len(policy.api_keys) == len(document.get("api_keys", []))
        return
    settings = {"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": "data"}
    with contextlib.chdir(tmp_path):  # beside the CDN example's key files
        loaded = config_module.load({**settings, **readme_cdn_secrets(tmp_path)})
    for name, table in document["buckets"].items():
        assert loaded.buckets[name].backend == table["backend"]
    if "default_bucket" in document:
        assert loaded.default_bucket == document["default_bucket"]


def parse_proto(block: Block, tmp_path: Path) -> None:
    (tmp_path / "readme.proto").write_text(block.text)
    assert protoc.main(["protoc", f"-I{tmp_path}", f"--descriptor_set_out={tmp_path}/out",
                        "readme.proto"]) == 0  # fmt: skip


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

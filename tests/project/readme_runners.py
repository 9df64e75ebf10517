"""How tests/project/test_readme.py runs a README block of each language: console blocks
in bash, command by command, their shown output matched; python in the virtualenv;
javascript in node, in a project of the reader's own; toml loaded as the gateway
loads it; proto compiled."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpc_tools import protoc

from gateway import config as config_module
from gateway.access.policy import Policy
from tests.cdn.cdn_gateways import readme_cdn_secrets
from tests.conftest import REPO
from tests.project.readme_blocks import Block
from tests.project.readme_reader import Reader

BLOCK_TIMEOUT = 120  # seconds; every block takes a few here


NODE_MODULES = REPO / "clients" / "node" / "node_modules"


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
    result = _run(["bash", "-c", "\n".join(script)], reader.directory, block, reader)
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
    _run_script([sys.executable, str(script)], reader.directory, block, reader)


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
    _run_script([node, str(script)], project, block, reader)


def _run_script(argv: list[str], cwd: Path, block: Block, reader: Reader) -> None:
    """Run a block's script in the reader's environment: it must exit 0."""
    result = _run(argv, cwd, block, reader)
    assert result.returncode == 0, f"README.md line {block.line}:\n{result.stderr}"


def _run(
    argv: list[str], cwd: Path, block: Block, reader: Reader
) -> subprocess.CompletedProcess[str]:
    """A block's command in the reader's environment, with no stdin, within
    BLOCK_TIMEOUT (a block still running then fails, showing its output)."""
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
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

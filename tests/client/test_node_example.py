"""clients/node/example.js, run with node against a real gateway, as its README section says.

What the example stores must read back byte-identical through the Python client, what it
prints of its Gets must match the bytes, its CRC32C must be the Castagnoli one, and the
ErrorInfo it decodes must be the one the gateway sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import pytest

from gateway.access.api_keys import hash_key
from storagegw import Client, StorageError, TlsConfig
from tests.conftest import REPO, RunningGateway
from tests.transport.pki import Pki

EXAMPLE = REPO / "clients" / "node" / "example.js"
NODE_MODULES = REPO / "clients" / "node" / "node_modules"
NODE = shutil.which("node")
RUN_TIMEOUT = 120  # seconds; a run takes about two here
MIB = 1024 * 1024
API_KEY = "sgw_node-example-key-of-tenant-a-0123"
POLICY = f"""
[[api_keys]]
principal = "tenant-a"
sha256 = "{hash_key(API_KEY)}"

[[grants]]
principals = ["*"]
actions = ["read", "write", "delete", "list"]
buckets = ["*"]
prefixes = ["tenants/{{principal}}/"]
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (Node.js >= 18)")


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def line(self, pattern: str) -> re.Match[str]:
        """The one printed line that the pattern matches from its start."""
        found = [m for line in self.stdout.splitlines() if (m := re.match(pattern, line))]
        assert len(found) == 1, f"expected one line like {pattern!r} in:\n{self.stdout}"
        return found[0]


# The environment less any STORAGEGW_* (target, token, CA...): each test sets what it means.
ENVIRONMENT = {name: value for name, value in os.environ.items() if "STORAGEGW_" not in name}


def run_example(*args: str, env: dict[str, str] | None = None) -> Run:
    assert NODE is not None
    assert NODE_MODULES.is_dir(), "clients/node/node_modules is missing: run `make setup`"
    result = subprocess.run(
        [NODE, str(EXAMPLE), *args],
        cwd=REPO,
        env={**ENVIRONMENT, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def crc32c_hex(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


@pytest.fixture(params=["memory", "local"])
def node_gateway(
    request: pytest.FixtureRequest, gateway_factory: Callable[..., RunningGateway]
) -> RunningGateway:
    return gateway_factory(STORAGE_BACKEND=request.param)


def test_what_the_example_stores_reads_back_identical(node_gateway: RunningGateway, tmp_path: Path):
    # Over two of the example's 1 MiB chunks, and not a whole number of them.
    data = os.urandom(2 * MIB + 12_345)
    source = tmp_path / "report.bin"
    source.write_bytes(data)
    run = run_example(node_gateway.target, str(source), "reports/2026/report.bin")
    assert run.returncode == 0, run.stderr

    with Client(node_gateway.target, timeout=30) as client:
        assert client.get_bytes("reports/2026/report.bin") == data
        stored = client.head("reports/2026/report.bin")
    assert stored.size == len(data)
    assert stored.metadata == {"written-by": "clients/node/example.js"}
    assert stored.crc32c == google_crc32c.value(data)

    put = run.line(r"put (\S+): (\d+) bytes, crc32c (\w+), sha256 (\w+), generation (\d+)$")
    sha256 = hashlib.sha256(data).hexdigest()
    # The example's own CRC32C of the whole object is the one the Python client computes.
    assert put.groups() == (
        "reports/2026/report.bin", str(len(data)), crc32c_hex(data), sha256,
        str(stored.generation),
    )  # fmt: skip
    head = run.line(r"head reports/2026/report\.bin: (\d+) bytes, (\S+), metadata (.*)$")
    assert head.groups() == (
        str(len(data)),
        "application/octet-stream",
        '{"written-by":"clients/node/example.js"}',
    )
    whole = run.line(
        r"get reports/2026/report\.bin: (\d+) bytes in (\d+) chunk\(s\), .*sha256 (\w+)$"
    )
    assert whole.groups() == (str(len(data)), "3", sha256)


def test_the_ranged_get_reads_the_range_it_asked_for(node_gateway: RunningGateway, tmp_path: Path):
    # read_offset and read_limit are snake_case: without keepCase the Get would be whole.
    data = os.urandom(MIB + 7)
    source = tmp_path / "clip.bin"
    source.write_bytes(data)
    run = run_example(node_gateway.target, str(source), "clips/clip.bin")
    assert run.returncode == 0, run.stderr
    ranged = run.line(r"get clips/clip\.bin \[(\d+), (\d+)\) of (\d+): (\d+) bytes, sha256 (\w+)$")
    start = len(data) // 3
    assert ranged.groups() == (
        str(start), str(start + 5000), str(len(data)), "5000",
        hashlib.sha256(data[start : start + 5000]).hexdigest(),
    )  # fmt: skip


def test_the_decoded_error_info_is_the_gateways(node_gateway: RunningGateway, tmp_path: Path):
    source = tmp_path / "note.txt"
    source.write_bytes(b"hello from node\n")
    run = run_example(node_gateway.target, str(source), "notes/note.txt")
    assert run.returncode == 0, run.stderr
    with Client(node_gateway.target, timeout=30) as client:
        assert client.get_bytes("notes/note.txt") == b"hello from node\n"
        with pytest.raises(StorageError) as missing:
            client.head("notes/note.txt.missing")
    printed = run.line(r"head notes/note\.txt\.missing: (\w+), reason (\w+), domain (\w+), (.*)$")
    assert printed.groups() == (
        missing.value.code.name,
        missing.value.reason,
        "storagegw",
        'metadata {"key":"notes/note.txt.missing"}',
    )
    assert missing.value.reason == "OBJECT_NOT_FOUND"


def test_a_refused_put_stores_nothing_and_says_why(node_gateway: RunningGateway, tmp_path: Path):
    source = tmp_path / "escape.bin"
    source.write_bytes(b"x" * 100)
    run = run_example(node_gateway.target, str(source), "../escape.bin")
    assert run.returncode == 1
    assert run.stdout == ""
    assert re.fullmatch(r"example\.js: .*\(INVALID_KEY \{.*\}\)\n", run.stderr), run.stderr
    with Client(node_gateway.target, timeout=30) as client:
        assert list(client.list("")) == []


def test_an_empty_file(node_gateway: RunningGateway, tmp_path: Path):
    source = tmp_path / "empty"
    source.write_bytes(b"")
    run = run_example(node_gateway.target, str(source))
    assert run.returncode == 0, run.stderr
    with Client(node_gateway.target, timeout=30) as client:
        assert client.get_bytes("examples/node/empty") == b""
    assert run.line(r"put examples/node/empty: 0 bytes, crc32c 00000000, ")
    assert run.line(r"get examples/node/empty \[0, 0\) of 0: 0 bytes, ")


def test_with_tls_and_an_api_key(gateway_factory: Callable[..., RunningGateway], tmp_path: Path):
    pki = Pki(tmp_path / "pki")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    running = gateway_factory(STORAGE_BACKEND="memory", GATEWAY_POLICY=str(policy), **pki.env())
    source = tmp_path / "invoice.csv"
    source.write_bytes(b"id,total\n1,42\n")
    key = "tenants/tenant-a/invoice.csv"
    tls = {"STORAGEGW_TLS_CA": str(pki.ca_file)}

    run = run_example(running.target, str(source), key, env={**tls, "STORAGEGW_TOKEN": API_KEY})
    assert run.returncode == 0, run.stderr
    assert API_KEY not in run.stdout + run.stderr
    tenant = Client(running.target, tls=TlsConfig(ca=pki.ca_file), token=API_KEY, timeout=30)
    with tenant as client:
        assert client.get_bytes(key) == b"id,total\n1,42\n"
    run.line(r"head tenants/tenant-a/invoice\.csv\.missing: NOT_FOUND, reason OBJECT_NOT_FOUND, ")

    # Without the key the gateway refuses, and the example says with which reason.
    refused = run_example(running.target, str(source), key, env=tls)
    assert refused.returncode == 1
    assert "(CREDENTIALS_MISSING " in refused.stderr, refused.stderr


def test_with_no_arguments_it_stores_random_bytes_at_the_target_from_the_environment(
    node_gateway: RunningGateway,
):
    run = run_example(env={"STORAGEGW_TARGET": node_gateway.target})
    assert run.returncode == 0, run.stderr
    with Client(node_gateway.target, timeout=30) as client:
        data = client.get_bytes("examples/node/random.bin")
    assert len(data) == 3 * MIB
    put = run.line(r"put examples/node/random\.bin: (\d+) bytes, crc32c (\w+), sha256 (\w+), ")
    assert put.groups() == (str(3 * MIB), crc32c_hex(data), hashlib.sha256(data).hexdigest())

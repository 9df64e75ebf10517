"""The client package runs with grpcio and protobuf alone.

Each check runs in a fresh interpreter whose import system refuses the
gateway and every optional or server-side dependency, then lists what got
imported: only the standard library, grpc, protobuf and storagegw may appear.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

# OpenTelemetry is optional: an application that traces has it (storagegw/_tracing.py).
BLOCKED = ("google_crc32c", "gateway", "grpc_status", "google.rpc", "aiohttp", "opentelemetry")
CLIENT_MODULES = (
    "storagegw",
    "storagegw.client",
    "storagegw.aio",
    "storagegw.cli",
    "storagegw.errors",
)

PRELUDE = textwrap.dedent(
    f"""
    import importlib, sys

    BLOCKED = {BLOCKED!r}

    class Blocker:
        # Refuses the listed packages (and their submodules) like an absent install.
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"blocked for this test: {{name}}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    # Modules loaded by interpreter start-up (site, .pth hooks) are not the client's.
    baseline = set(sys.modules)
    """
)


def run_isolated(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_client_imports_need_only_grpc_and_protobuf() -> None:
    result = run_isolated(
        f"""
        for name in {CLIENT_MODULES!r}:
            importlib.import_module(name)

        def allowed(name):
            top = name.split(".")[0]
            return (
                top in sys.stdlib_module_names
                # grpc itself imports grpc_tools, grpc_health and grpc_reflection
                # when they are installed (grpc_status is blocked above).
                or top.startswith("grpc")
                or top in ("storagegw", "typing_extensions")
                # Created by grpc's compiled Cython extension.
                or top == "cython_runtime"
                or top.startswith("_cython_")
                or name == "google"  # the namespace package protobuf lives in
                or name.startswith(("google.protobuf", "google._upb"))
            )

        offenders = sorted(n for n in set(sys.modules) - baseline if not allowed(n))
        assert not offenders, f"non-stdlib modules imported: {{offenders}}"
        blocked = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
        assert not blocked, f"blocked modules imported: {{blocked}}"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_pure_python_crc32c_is_used_without_google_crc32c() -> None:
    result = run_isolated(
        """
        from storagegw import _crc32c
        from storagegw._streams import PutStream
        from storagegw.v1 import storage_pb2

        assert not _crc32c.accelerated()
        assert _crc32c.crc32c(b"123456789") == 0xE3069283
        stream = PutStream(storage_pb2.PutSpec(key="k"), 4)
        stream.feed(b"123456789")
        assert stream.finish().object_checksums.crc32c == 0xE3069283
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_help_works_without_the_gateway() -> None:
    result = run_isolated(
        """
        from storagegw import cli
        try:
            cli.main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0
        assert cli.main(["serve"]) == 1  # reports that the gateway is not installed
        """
    )
    assert result.returncode == 0, result.stderr
    assert "exit codes:" in result.stdout
    assert "the gateway is not installed" in result.stderr


def test_round_trip_with_only_grpcio_and_protobuf_installed(memory_gateway, tmp_path) -> None:
    """A site-packages holding just grpcio (with typing_extensions, its own
    dependency) and protobuf is enough to use the client."""
    import google.protobuf
    import grpc
    import typing_extensions

    from tests.conftest import REPO

    site = tmp_path / "site-packages"
    (site / "google").mkdir(parents=True)
    (site / "grpc").symlink_to(next(iter(grpc.__path__)))
    (site / "google" / "protobuf").symlink_to(next(iter(google.protobuf.__path__)))
    (site / "typing_extensions.py").symlink_to(typing_extensions.__file__)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(site)!r}, {str(REPO / "clients" / "python")!r}]
        from storagegw import Client
        with Client({memory_gateway.target!r}, timeout=30) as client:
            info = client.put_bytes("isolated", b"x" * 3_000_000)
            assert client.get_bytes("isolated") == b"x" * 3_000_000
            assert [o.key for o in client.list()] == ["isolated"]
        print("ok", info.size)
        """
    )
    # -I: no user site, no PYTHON* variables; -S: no site-packages at all.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "3000000"]


def test_the_cli_without_opentelemetry_ignores_traceparent(memory_gateway) -> None:
    """TRACEPARENT asks the CLI to join a trace; without OpenTelemetry it still works."""
    result = run_isolated(
        f"""
        import os
        from storagegw import cli
        os.environ["TRACEPARENT"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert cli.main(["--target", {memory_gateway.target!r}, "stat", "missing"]) == 3
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

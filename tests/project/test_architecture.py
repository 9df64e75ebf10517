"""The shape of the code, held as tests: no import cycles, small modules, and
capabilities asked as values. The import layers themselves are import-linter
contracts in pyproject.toml, run by `make lint`."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = {"gateway": REPO / "gateway", "storagegw": REPO / "clients" / "python" / "storagegw"}
GENERATED = SOURCES["storagegw"] / "v1"
# The tests and the bench are code too: held to the same size as the sources.
SIZED = [*SOURCES.values(), REPO / "tests", REPO / "bench"]
MAX_MODULE_LINES = 400


def _modules(roots: Iterable[Path] = SOURCES.values()) -> Iterator[Path]:
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if not path.is_relative_to(GENERATED):
                yield path


def _too_long(paths: Iterable[Path], base: Path) -> dict[str, int]:
    """The modules past MAX_MODULE_LINES lines, by path under base, with their lengths."""
    return {
        str(path.relative_to(base)): lines
        for path in paths
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("gateway", "storagegw", cache_dir=None)


@pytest.mark.parametrize("package", ["gateway", "storagegw"])
def test_no_import_cycles(graph: grimp.ImportGraph, package: str) -> None:
    assert _cycles(graph, package) == []


def test_cycle_finder_sees_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: two modules importing each other are found."""
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loopy import b\n")
    (package / "b.py").write_text("from loopy import a\n")
    (package / "c.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    looped = grimp.build_graph("loopy", cache_dir=None)
    assert _cycles(looped, "loopy") == [["loopy.a", "loopy.b"]]


def test_modules_stay_small() -> None:
    """A module past this many lines is doing more than one job: in the gateway, the
    client, the tests and the bench alike (generated code aside)."""
    assert _too_long(_modules(SIZED), REPO) == {}


def test_size_check_sees_a_long_module(tmp_path: Path) -> None:
    """The check above can fail: a test module one line past the limit is found, one
    at the limit is not, and generated code is not counted."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tests / "test_at_limit.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    assert _too_long(_modules([tests]), tmp_path) == {"tests/test_long.py": MAX_MODULE_LINES + 1}
    assert set(_modules(SIZED)) >= {Path(__file__), REPO / "bench" / "cli.py"}
    assert not any(path.is_relative_to(GENERATED) for path in _modules(SIZED))


def _capability_protocols() -> set[str]:
    base = ast.parse((REPO / "gateway" / "backends" / "base.py").read_text())
    return {
        node.name
        for node in base.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases)
    }


def test_capabilities_are_values_not_type_probes() -> None:
    """No isinstance against a driver Protocol, no runtime_checkable: what a
    driver can do is read from backend.capabilities."""
    protocols = _capability_protocols()
    assert {"Backend", "ResumableBackend", "PresigningBackend"} <= protocols
    probes = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        # The driver Protocols as this module names them (imports may rename).
        local_names = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "gateway.backends.base"
            for alias in node.names
            if alias.name in protocols
        }
        if path == REPO / "gateway" / "backends" / "base.py":
            local_names = protocols
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "runtime_checkable":
                probes.append(f"{path.relative_to(REPO)}:{node.lineno} runtime_checkable")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
            ):
                named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                named |= {
                    n.attr
                    for n in ast.walk(node.args[1])
                    if isinstance(n, ast.Attribute) and n.attr in protocols
                }
                if named & (local_names | {f"base.{p}" for p in protocols}) or any(
                    isinstance(n, ast.Attribute) and n.attr in protocols
                    for n in ast.walk(node.args[1])
                ):
                    probes.append(f"{path.relative_to(REPO)}:{node.lineno} {sorted(named)}")
    assert probes == []

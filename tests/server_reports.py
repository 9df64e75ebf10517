"""Lines about the test servers (how long Ceph took to start, where it listens) shown on every
run, past pytest's output capture; a pytest plugin (tests/conftest.py registers it).

Run serially, a line goes to the terminal at once. Under pytest-xdist a worker's stdout is
/dev/null (execnet keeps the real one to talk to the controller), so a worker keeps its lines
in its workeroutput, which the controller receives when the worker finishes and shows in a
"servers" section of the summary, each line with its worker's id (gw0, gw1...): each worker
starts servers of its own.
"""

from __future__ import annotations

from typing import Any

import pytest

_WORKER_KEY = "storagegw_server_reports"  # in a worker's workeroutput: list[str]
_RECEIVED = pytest.StashKey[list[str]]()  # on the controller: "gw0: message", ...


def report(config: pytest.Config, message: str) -> None:
    """Show message on this run's terminal, however the run is distributed."""
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker
        workeroutput.setdefault(_WORKER_KEY, []).append(message)
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[servers] {message}")


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is not installed
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the controller, as a worker finishes: keep the lines it reported."""
    messages = getattr(node, "workeroutput", {}).get(_WORKER_KEY, [])
    received = node.config.stash.setdefault(_RECEIVED, [])
    received.extend(f"{node.gateway.id}: {message}" for message in messages)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    received = config.stash.get(_RECEIVED, [])
    if received:
        terminalreporter.section("servers")
        for line in received:
            terminalreporter.line(f"[servers] {line}")

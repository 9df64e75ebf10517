"""The peers' servers, started and stopped by the bench (bench.peers) and by
tests/bench, which moves an object through each so that they keep working.

- fastapi: bench.peer_app under uvicorn, one process, storing to disk with fsync;
- rclone-http: `rclone serve http ROOT` (download only; Debian's rclone);
- rclone-webdav: `rclone serve webdav ROOT` (upload and download).

Each serves one directory of its own with rclone's and uvicorn's defaults.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import procs, servers
from bench.peer_app import PREFIX

PEERS = ("fastapi", "rclone-http", "rclone-webdav")
UPLOADS = frozenset({"fastapi", "rclone-webdav"})  # rclone-http only serves files
RCLONE = "rclone"


@dataclass
class Peer:
    name: str  # one of PEERS
    label: str  # what it is, for the table: "rclone serve http"
    version: str  # what ran, for the notes
    server: procs.Server
    base_url: str  # an object's URL is base_url + its key
    root: Path  # the directory it stores to or serves

    def url(self, key: str) -> str:
        return self.base_url + urllib.parse.quote(key)

    @property
    def pid(self) -> int:
        return self.server.pid


def rclone_missing() -> bool:
    return shutil.which(RCLONE) is None


def rclone_version() -> str:
    try:
        out = subprocess.run(
            [RCLONE, "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "rclone"
    return out.splitlines()[0] if out else "rclone"  # "rclone v1.60.1-DEV"


def _versions(*packages: str) -> str:
    """ "name version, ..." of those of packages installed."""
    found = []
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def start(
    name: str, processes: procs.Processes, root: Path, log_dir: Path, extra_env: dict[str, str]
) -> Peer:
    """Peer name serving root, started but not yet ready (see wait_ready);
    extra_env (--server-env) goes to the Python peer, as to the gateway."""
    root.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{procs.free_port()}"
    log = log_dir / f"peer-{name}.log"
    if name == "fastapi":
        argv = [sys.executable, "-m", "bench.peer_app", "--root", str(root), "--listen", address]
        versions = _versions("fastapi", "uvicorn", "uvloop", "httptools")
        process = processes.spawn(argv, servers.child_env(extra_env), log)
        label, version = "FastAPI + uvicorn", f"{versions} (bench/peer_app.py)"
        base_url = f"http://{address}{PREFIX}"
    elif name in ("rclone-http", "rclone-webdav"):
        kind = name.removeprefix("rclone-")
        # No rclone.conf of the user's: a local directory needs none.
        config = log_dir / "rclone.conf"
        argv = [RCLONE, "serve", kind, str(root), "--addr", address, "--config", str(config)]
        process = processes.spawn(argv, servers.child_env({}), log)
        label, version = f"rclone serve {kind}", rclone_version()
        base_url = f"http://{address}/"
    else:
        raise ValueError(f"unknown peer {name!r}")
    server = procs.Server(name, process, address, log)
    return Peer(name, label, version, server, base_url, root)


def wait_ready(peer: Peer, timeout: float = 30.0) -> None:
    """Wait until peer answers HTTP (any status); fail if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(peer.base_url, timeout=1.0):  # noqa: S310 (127.0.0.1)
                return
        except urllib.error.HTTPError:
            return  # an answer: it is serving
        except OSError:
            pass
        if peer.server.process.poll() is not None:
            raise RuntimeError(
                f"{peer.name} exited with {peer.server.process.returncode}:\n"
                f"{peer.server.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"{peer.name} not answering after {timeout:.0f} s")
        time.sleep(0.05)  # polling: nothing tells when a listener is up

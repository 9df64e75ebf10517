"""The S3 servers of the S3 section, started and stopped by the bench itself.

- moto: moto's standalone server (``python -m moto.server``), one Python process;
- ceph: a throw-away single-node Ceph cluster with the RADOS Gateway
  (scripts/ceph-rgw/start.sh: a monitor, a memstore OSD and radosgw).

Both are started with the test suite's own classes (tests/servers.py), so the
bench and the tests run the same servers the same way.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.remote import StorageServer
from tests.ceph_rgw import CephRgw
from tests.moto_server import MotoServer
from tests.servers import make_bucket

SERVERS = ("moto", "ceph")
BUCKET = "storagegw-bench"


@dataclass
class S3Server(StorageServer):
    """name: "moto" or "ceph"; front_pid: moto's server, radosgw."""

    access_key: str
    secret_key: str
    region: str


def ceph_missing() -> list[str]:
    """Ceph binaries not on PATH (empty when Ceph can run)."""
    return CephRgw.missing_binaries()


def _ceph_version() -> str:
    try:
        out = subprocess.run(
            ["ceph", "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "Ceph RGW"
    # "ceph version 16.2.15 (618f...) pacific (stable)"
    words = out.split()
    return f"Ceph RGW {words[2]}" if len(words) > 2 else "Ceph RGW"


def _start_moto() -> S3Server:
    moto = MotoServer().start()
    try:
        pid = moto.pid
        if pid is None:
            raise RuntimeError("moto server has no pid")
        make_bucket(moto.endpoint, moto.access_key, moto.secret_key, BUCKET)
    except BaseException:
        moto.stop()
        raise
    return S3Server(
        name="moto",
        label=f"moto {importlib.metadata.version('moto')} (python -m moto.server)",
        endpoint=moto.endpoint,
        front_pid=pid,
        pids=[pid],
        stop=moto.stop,
        collect_garbage=lambda: None,  # deleted objects are gone at once
        access_key=moto.access_key,
        secret_key=moto.secret_key,
        region=moto.region,
    )


def _start_ceph(base_dir: Path) -> S3Server:
    ceph = CephRgw().start(base_dir)
    try:
        pids = ceph.daemon_pids()
        make_bucket(ceph.endpoint, ceph.access_key, ceph.secret_key, BUCKET)
    except BaseException:
        ceph.stop()
        raise
    return S3Server(
        name="ceph",
        label=f"{_ceph_version()} (single node: mon, memstore OSD, radosgw; started in "
        f"{ceph.startup_seconds:.1f} s)",
        endpoint=ceph.endpoint,
        front_pid=pids["client.rgw.a"],
        pids=list(pids.values()),
        stop=ceph.stop,
        collect_garbage=ceph.collect_garbage,
        access_key=ceph.access_key,
        secret_key=ceph.secret_key,
        region=ceph.region,
    )


def start(name: str, base_dir: Path) -> S3Server:
    """Server name, up and holding an empty bucket BUCKET; base_dir: its files (Ceph)."""
    if name == "moto":
        return _start_moto()
    if name == "ceph":
        return _start_ceph(base_dir)
    raise ValueError(f"unknown S3 server {name!r}")

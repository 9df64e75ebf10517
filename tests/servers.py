"""What the storage servers tests start have in common: free ports, S3 clients, buckets.

Each server has a module of its own, started as a separate process on 127.0.0.1:
tests/moto_server.py (``MotoServer``), tests/ceph_rgw.py (``CephRgw``) and
tests/fake_gcs_server.py (``FakeGcsServer``); tests/clamd_server.py starts clamd.
No fixtures are registered here: conftest.py wires these into pytest."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent


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

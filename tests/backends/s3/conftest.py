"""An S3 backend on a fresh bucket of the session's moto server, and a boto3 client to
look behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from gateway.backends.s3.backend import S3Backend
from tests.backends.s3.moto_bucket import BUCKET, KEYS, driver_settings
from tests.moto_server import MotoServer


@pytest.fixture
def moto_endpoint(moto_server: MotoServer) -> str:
    return moto_server.endpoint


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=30).raise_for_status()
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
async def backend(s3: Any, moto_endpoint: str) -> AsyncIterator[S3Backend]:
    driver = S3Backend(driver_settings(moto_endpoint))
    yield driver
    await driver.close()

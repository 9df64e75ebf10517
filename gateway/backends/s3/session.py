"""The S3 driver's client: its aioboto3 session and botocore settings, and
the S3Context a backend works against once the client is open."""

from __future__ import annotations

import contextlib

import aioboto3
from botocore.config import Config

from gateway.backends.observer import StoreObserver
from gateway.backends.s3.common import S3Context
from gateway.backends.s3.observed import RequestReporter
from gateway.backends.s3.settings import S3Settings


def new_session(settings: S3Settings) -> aioboto3.Session:
    """The aioboto3 session of the driver's client: the settings' keys and region,
    else botocore's default chain."""
    return aioboto3.Session(
        aws_access_key_id=settings.access_key or None,
        aws_secret_access_key=settings.secret_key or None,
        region_name=settings.region or None,
    )


def client_config(settings: S3Settings) -> Config:
    """botocore settings of the driver's client (the benchmark's direct client uses
    them too, so both talk to S3 alike)."""
    return Config(
        max_pool_connections=64,
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": settings.addressing_style},
        signature_version="s3v4",
        # Checksums only where S3 requires them: the gateway checks integrity
        # itself, and many S3-compatible stores reject aws-chunked trailing
        # checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


async def open_context(
    stack: contextlib.AsyncExitStack, settings: S3Settings, observer: StoreObserver | None = None
) -> S3Context:
    """A new client for settings, closed with stack, and its S3Context; each
    request it sends is reported to observer."""
    client = await stack.enter_async_context(
        new_session(settings).client(
            "s3", endpoint_url=settings.endpoint_url or None, config=client_config(settings)
        )
    )
    if observer is not None:
        RequestReporter(observer, settings.bucket).register(client.meta.events)
    return S3Context(client, settings.bucket, settings.prefix)

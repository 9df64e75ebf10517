"""The bucket's upload policy on Copy: within one backend (the source's first
bytes read by a ranged read before the driver copies) and across backends
(streamed through the policy)."""

from __future__ import annotations

import grpc
import pytest

from storagegw import Client
from tests.conftest import RunningGateway
from tests.upload_policy.file_headers import CORPUS, Sample
from tests.upload_policy.gateways import (
    TRUTHFUL_ALLOWED,
    KiB,
    assert_absent,
    assert_refused,
    mismatch,
    plant,
    refused,
)

# ------------------------------------------------------------------------- Copy


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_copy_within_a_backend_reads_the_source_head_first(
    running: RunningGateway, client: Client, sample: Sample
) -> None:
    plant(running, "typed", "source", sample.padded(100 * KiB), sample.false)
    key = f"copy{sample.suffix}"
    error = refused(client.copy, "source", key)
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)
    if sample.name in TRUTHFUL_ALLOWED:
        info = client.copy("source", key, content_type=sample.declared)
        assert info.content_type == sample.declared
        assert client.get_bytes(key) == client.get_bytes("source")
    else:
        error = refused(client.copy, "source", key, content_type=sample.declared)
        assert error.reason == "TYPE_NOT_ALLOWED"
        assert_absent(client, key)


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_copy_across_backends_streams_through_the_policy(client: Client, sample: Sample) -> None:
    data = sample.padded(300 * KiB)
    client.put_bytes("source", data, bucket="free", content_type=sample.false)
    key = f"across{sample.suffix}"
    error = refused(client.copy, "source", key, src_bucket="free", dst_bucket="typed")
    expected = mismatch(sample, sample.false)
    assert_refused(error, "TYPE_MISMATCH", expected, grpc.StatusCode.INVALID_ARGUMENT)
    assert_absent(client, key)
    copy = client.copy
    if sample.name in TRUTHFUL_ALLOWED:
        copy("source", key, src_bucket="free", dst_bucket="typed", content_type=sample.declared)
        assert client.get_bytes(key) == data
    else:
        error = refused(copy, "source", key, src_bucket="free", content_type=sample.declared)
        assert error.reason == "TYPE_NOT_ALLOWED"
        assert_absent(client, key)

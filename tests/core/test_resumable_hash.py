"""The resumable checksums: saved and restored anywhere, they finish with the
same digests as hashlib and google_crc32c over the whole stream."""

from __future__ import annotations

import hashlib
import json
import os

import google_crc32c
import pytest

from gateway.core.resumable_hash import ResumableChecksums, ResumableSha256


@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, 1000, 4096 * 3 + 17])
def test_restored_state_finishes_like_one_pass(cut: int) -> None:
    data = os.urandom(50_000)
    first = ResumableChecksums()
    first.update(data[:cut])
    saved = json.loads(json.dumps(first.save()))  # as stored: through JSON
    second = ResumableChecksums.load(saved)
    second.update(data[cut:])
    assert second.size == len(data)
    assert second.sha256 == hashlib.sha256(data).digest()
    assert second.crc32c == int(google_crc32c.value(data))


def test_digest_leaves_the_running_state_alone() -> None:
    sha = ResumableSha256()
    sha.update(b"abc")
    assert sha.digest() == hashlib.sha256(b"abc").digest()
    sha.update(b"def")
    assert sha.digest() == hashlib.sha256(b"abcdef").digest()


def test_empty_stream() -> None:
    sums = ResumableChecksums()
    assert sums.sha256 == hashlib.sha256(b"").digest()
    assert sums.crc32c == 0


@pytest.mark.parametrize("state", [b"", b"x" * 10, b"\xff" * 112])
def test_states_that_are_not_sha256_are_refused(state: bytes) -> None:
    with pytest.raises(ValueError, match="SHA-256 state"):
        ResumableSha256(state)

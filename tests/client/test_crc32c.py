"""The client's CRC32C: known vectors on the accelerated and the pure-Python
path, the two against google_crc32c, combining, the running accumulator, and
the check of a slice of a message in place."""

from __future__ import annotations

import random

import pytest

from storagegw import _crc32c
from tests.rpc_calls import crc as native

# RFC 3720 (iSCSI) appendix B.4 test vectors plus the usual check value.
KNOWN_VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.fixture
def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the accelerator switched off, as when google_crc32c is absent."""
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert not _crc32c.accelerated()


@pytest.mark.parametrize(("data", "expected"), KNOWN_VECTORS)
def test_pure_python_known_vectors(data: bytes, expected: int) -> None:
    assert _crc32c.crc32c_extend_py(0, data) == expected


@pytest.mark.parametrize(("data", "expected"), KNOWN_VECTORS)
def test_public_crc32c_known_vectors_both_paths(
    data: bytes, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _crc32c.crc32c(data) == expected
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert _crc32c.crc32c(data) == expected


def test_accelerator_is_used_when_installed() -> None:
    assert _crc32c.accelerated()


def test_pure_python_matches_google_crc32c_on_random_data() -> None:
    rng = random.Random(20240601)
    for length in [1, 2, 3, 7, 8, 9, 255, 256, 1000, 4096, 65_537]:
        data = rng.randbytes(length)
        assert _crc32c.crc32c_extend_py(0, data) == native(data), length


def test_pure_python_extends_like_google_crc32c() -> None:
    rng = random.Random(7)
    crc = 0
    whole = b""
    for _ in range(20):
        piece = rng.randbytes(rng.randrange(0, 3000))
        crc = _crc32c.crc32c_extend_py(crc, piece)
        whole += piece
        assert crc == native(whole)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_accepts_other_buffers(kind: type, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"123456789"
    assert _crc32c.crc32c(kind(data)) == 0xE3069283
    monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    assert _crc32c.crc32c(kind(data)) == 0xE3069283


def test_combine_matches_crc_of_concatenation() -> None:
    rng = random.Random(99)
    for _ in range(50):
        first = rng.randbytes(rng.randrange(0, 5000))
        second = rng.randbytes(rng.randrange(0, 5000))
        combined = _crc32c.crc32c_combine(native(first), native(second), len(second))
        assert combined == native(first + second)


@pytest.mark.usefixtures("pure_python")
def test_accumulator_without_accelerator_combines_chunk_crcs() -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(rng.randrange(0, 2000)) for _ in range(30)]
    accumulator = _crc32c.Crc32cAccumulator()
    for chunk in chunks:
        assert accumulator.add(chunk) == native(chunk)
    assert accumulator.value == native(b"".join(chunks))
    assert accumulator.size == sum(map(len, chunks))


def test_accumulator_combines_large_chunks_of_any_length() -> None:
    # Large chunks are not re-read for the running CRC: it is combined from
    # theirs, whatever their length (odd tails included).
    rng = random.Random(5)
    sizes = [1 << 20, 64 * 1024, 64 * 1024 + 1, 300_007, 1 << 20, 12, 2**21 - 1]
    chunks = [rng.randbytes(size) for size in sizes]
    accumulator = _crc32c.Crc32cAccumulator()
    for chunk in chunks:
        assert accumulator.add(chunk) == native(chunk)
    assert accumulator.value == native(b"".join(chunks))


@pytest.mark.parametrize("accelerated", [True, False])
def test_a_slice_is_checked_in_place_as_strictly_as_copied_out(
    accelerated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not accelerated:
        monkeypatch.setattr(_crc32c, "_ACCELERATOR", None)
    message = random.Random(7).randbytes(40)
    for start in range(len(message) + 1):
        for end in range(start, len(message) + 1):
            crc = native(message[start:end])
            assert _crc32c.crc32c_within(message, start, end, crc)
            for wrong in (crc ^ 1, crc ^ 0x80000000, native(message[start : end + 1])):
                if wrong != crc:
                    assert not _crc32c.crc32c_within(message, start, end, wrong)

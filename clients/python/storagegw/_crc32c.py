"""CRC32C (Castagnoli), in pure Python with an optional native accelerator.

The client must run with grpcio and protobuf alone, so the table-driven
implementation here is always available. When the optional `google_crc32c`
package is installed with its C extension it is used instead: it is a few
hundred times faster, which matters for multi-gigabyte transfers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

__all__ = [
    "Crc32cAccumulator",
    "accelerated",
    "crc32c",
    "crc32c_combine",
    "crc32c_extend_py",
]

# The reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed).
_POLY = 0x82F63B78
_MASK = 0xFFFFFFFF

Buffer = bytes | bytearray | memoryview


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c_extend_py(crc: int, data: Buffer) -> int:
    """Extend `crc` (the CRC32C of earlier bytes; 0 to start) over `data`."""
    table = _TABLE  # a local name is noticeably faster in this hot loop
    value = crc ^ _MASK
    for byte in data if not isinstance(data, memoryview) else data.cast("B"):
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ _MASK


def _load_accelerator() -> Callable[[int, bytes], int] | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    # Without its C extension google_crc32c is a table loop like ours.
    if getattr(google_crc32c, "implementation", "c") != "c":
        return None
    extend: Callable[[int, bytes], int] = google_crc32c.extend
    return extend


_ACCELERATOR = _load_accelerator()


def accelerated() -> bool:
    """Whether the native google_crc32c extension is in use."""
    return _ACCELERATOR is not None


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C of `data`, or of earlier bytes with CRC `crc` followed by `data`."""
    if _ACCELERATOR is not None:
        # google_crc32c accepts only read-only buffers.
        return int(_ACCELERATOR(crc, data if isinstance(data, bytes) else bytes(data)))
    return crc32c_extend_py(crc, data)


# Combining CRCs (after zlib's crc32_combine): appending n zero bytes to a
# message is a linear map on its CRC register, a 32x32 matrix over GF(2)
# stored as 32 column bit-vectors. It lets the pure-Python path checksum each
# chunk once and derive the whole-object CRC instead of hashing twice.


def _matrix_times(matrix: tuple[int, ...] | list[int], vector: int) -> int:
    result = 0
    column = 0
    while vector:
        if vector & 1:
            result ^= matrix[column]
        vector >>= 1
        column += 1
    return result


def _matrix_square(matrix: tuple[int, ...] | list[int]) -> list[int]:
    return [_matrix_times(matrix, column) for column in matrix]


@lru_cache(maxsize=64)
def _zero_bytes_operator(length: int) -> tuple[int, ...]:
    """The matrix that advances a CRC register over `length` zero bytes."""
    # One zero bit: shift right, folding in the polynomial when bit 0 was set.
    operator = [_POLY] + [1 << n for n in range(31)]
    for _ in range(3):  # 1 -> 2 -> 4 -> 8 bits: one zero byte
        operator = _matrix_square(operator)
    result: list[int] | None = None
    while length:
        if length & 1:
            # Powers of one operator commute, so the order does not matter.
            result = operator if result is None else [_matrix_times(operator, c) for c in result]
        length >>= 1
        if length:
            operator = _matrix_square(operator)
    assert result is not None
    return tuple(result)


def crc32c_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC32C of A+B from crc1 = CRC(A), crc2 = CRC(B) and len(B)."""
    if length2 <= 0:
        return crc1
    return _matrix_times(_zero_bytes_operator(length2), crc1) ^ crc2


class Crc32cAccumulator:
    """A running whole-stream CRC32C that also returns each chunk's own CRC."""

    __slots__ = ("size", "value")

    def __init__(self) -> None:
        self.value = 0
        self.size = 0

    def add(self, chunk: Buffer) -> int:
        """Account for `chunk` and return its CRC32C."""
        chunk_crc = crc32c(chunk)
        self.add_checked(chunk, chunk_crc)
        return chunk_crc

    def add_checked(self, chunk: Buffer, chunk_crc: int) -> None:
        """Account for `chunk` whose CRC32C is already known to be `chunk_crc`."""
        if _ACCELERATOR is not None:
            self.value = crc32c(chunk, self.value)  # cheaper than combining
        else:
            self.value = crc32c_combine(self.value, chunk_crc, len(chunk))
        self.size += len(chunk)

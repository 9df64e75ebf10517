"""CRC32C (Castagnoli), in pure Python with an optional native accelerator.

The client must run with grpcio and protobuf alone, so the table-driven
implementation here is always available. When the optional `google_crc32c`
package is installed with its C extension it is used instead: it is a few
hundred times faster, which matters for multi-gigabyte transfers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = [
    "Crc32cAccumulator",
    "accelerated",
    "crc32c",
    "crc32c_combine",
    "crc32c_extend_py",
    "crc32c_within",
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
# stored as 32 column bit-vectors. It lets a stream checksum each chunk once
# and derive the whole-object CRC instead of hashing every byte twice.


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


# An operator as four byte tables: table[i][b] is the operator times byte b
# placed at bits 8i..8i+7, so a product is four lookups (not 32 steps).
_ByteTables = tuple[tuple[int, ...], ...]


def _byte_tables(matrix: list[int]) -> _ByteTables:
    tables = []
    for shift in range(0, 32, 8):
        table = [0] * 256
        for byte in range(1, 256):
            low = byte & -byte  # the lowest set bit: the rest is already known
            table[byte] = table[byte ^ low] ^ matrix[shift + low.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)


def _apply(tables: _ByteTables, vector: int) -> int:
    return (
        tables[0][vector & 0xFF]
        ^ tables[1][(vector >> 8) & 0xFF]
        ^ tables[2][(vector >> 16) & 0xFF]
        ^ tables[3][vector >> 24]
    )


# Entry k advances a CRC register over 2**k zero bytes (as a matrix, to square
# for the next entry, and as byte tables, to apply). Grown on demand under a
# lock, as threads may combine at once, and kept: combining over any length
# then costs four lookups per set bit of the length.
_powers: list[tuple[list[int], _ByteTables]] = []
_powers_lock = threading.Lock()


def _power(bit: int) -> _ByteTables:
    if bit >= len(_powers):
        with _powers_lock:
            if not _powers:
                matrix = _one_zero_byte()
                _powers.append((matrix, _byte_tables(matrix)))
            while len(_powers) <= bit:
                # Squared through its own byte tables: 32 lookups, not 32 x 32 steps.
                matrix, tables = _powers[-1]
                squared = [_apply(tables, column) for column in matrix]
                _powers.append((squared, _byte_tables(squared)))
    return _powers[bit][1]


def _one_zero_byte() -> list[int]:
    # One zero bit: shift right, folding in the polynomial when bit 0 was set.
    operator = [_POLY] + [1 << n for n in range(31)]
    for _ in range(3):  # 1 -> 2 -> 4 -> 8 bits: one zero byte
        operator = _matrix_square(operator)
    return operator


def crc32c_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC32C of A+B from crc1 = CRC(A), crc2 = CRC(B) and len(B)."""
    bit = 0
    while length2 > 0:
        if length2 & 1:
            # Powers of one operator commute, so the order does not matter.
            crc1 = _apply(_power(bit), crc1)
        length2 >>= 1
        bit += 1
    return crc1 ^ crc2 if bit else crc1


def crc32c_within(message: bytes, start: int, end: int, expected: int) -> bool:
    """Whether message[start:end] has the CRC32C `expected`, without copying
    it out (the native CRC takes only bytes, not a view of them).

    The whole message's CRC is computed and compared with the one the
    message would have if the slice's were `expected`: its prefix's,
    combined with `expected`, then with its suffix's. For fixed prefix and
    suffix that map from the slice's CRC is one-to-one, so the check is
    exactly as strong as comparing the slice's own CRC.
    """
    if _ACCELERATOR is None:
        return crc32c_extend_py(0, memoryview(message)[start:end]) == expected
    if start == 0 and end == len(message):
        return crc32c(message) == expected
    if start == end:
        return expected == 0  # the CRC32C of no bytes (combining would ignore it)
    would_be = crc32c_combine(crc32c(message[:start]), expected, end - start)
    would_be = crc32c_combine(would_be, crc32c(message[end:]), len(message) - end)
    return crc32c(message) == would_be


# Below this size the native CRC over the chunk again costs less than
# combining; above it, combining saves a second pass over every byte.
_COMBINE_FROM = 64 * 1024


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
        if _ACCELERATOR is not None and len(chunk) < _COMBINE_FROM:
            self.value = crc32c(chunk, self.value)
        else:
            self.value = crc32c_combine(self.value, chunk_crc, len(chunk))
        self.size += len(chunk)

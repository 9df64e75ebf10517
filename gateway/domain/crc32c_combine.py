"""CRC32C of two concatenated byte strings from the CRC32C of each.

Appending n zero bytes to a message is a linear map on its CRC register (a
32x32 matrix over GF(2)); after zlib's crc32_combine. A stream whose chunks
are each checked against a sent CRC32C can then derive the whole object's
CRC32C from those, instead of passing over every byte a second time.
"""

from __future__ import annotations

import threading

# The reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed).
_POLY = 0x82F63B78

# An operator as four byte tables: table[i][b] is the operator applied to
# byte b placed at bits 8i..8i+7, so applying it is four lookups.
_ByteTables = tuple[tuple[int, ...], ...]


def _times(matrix: list[int], vector: int) -> int:
    result = 0
    column = 0
    while vector:
        if vector & 1:
            result ^= matrix[column]
        vector >>= 1
        column += 1
    return result


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


def _one_zero_byte() -> list[int]:
    # One zero bit: shift right, folding in the polynomial when bit 0 was set.
    operator = [_POLY] + [1 << n for n in range(31)]
    for _ in range(3):  # squared three times: 1 -> 2 -> 4 -> 8 bits
        operator = [_times(operator, column) for column in operator]
    return operator


# Entry k advances a CRC register over 2**k zero bytes (the matrix, to square
# for the next entry, and its byte tables, to apply). Grown on demand under a
# lock, as worker threads may combine at once, and kept.
_powers: list[tuple[list[int], _ByteTables]] = []
_powers_lock = threading.Lock()


def _power(bit: int) -> _ByteTables:
    if bit >= len(_powers):
        with _powers_lock:
            if not _powers:
                matrix = _one_zero_byte()
                _powers.append((matrix, _byte_tables(matrix)))
            while len(_powers) <= bit:
                matrix, tables = _powers[-1]
                squared = [_apply(tables, column) for column in matrix]
                _powers.append((squared, _byte_tables(squared)))
    return _powers[bit][1]


def crc32c_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC32C of A+B from crc1 = CRC32C(A), crc2 = CRC32C(B) and len(B)."""
    bit = 0
    while length2 > 0:
        if length2 & 1:
            # Powers of one operator commute: the order does not matter.
            crc1 = _apply(_power(bit), crc1)
        length2 >>= 1
        bit += 1
    return crc1 ^ crc2

"""The protobuf varint, for the messages the gateway encodes by hand (Get's
data messages, OTLP spans): each is a few bytes, written per message."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """A varint of an unsigned value, or of an int64 (a negative value is its
    two's complement, ten bytes, as protobuf writes int64)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)

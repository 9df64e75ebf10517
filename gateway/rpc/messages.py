"""Requests parsed and responses serialised inside the handlers, not by gRPC.

gRPC's own (de)serialisation happens outside any handler: a request that is
not a valid message (a string field that is not UTF-8, say) would fail there
as INTERNAL or UNKNOWN, unlogged, and a response over the message size limit
would fail to send after the handler had returned OK, so the access log would
record OK for a call the client received as an error. The interceptor
registers the handlers with identity (de)serialisers and wraps them with
these functions instead: a request that does not parse is INVALID_ARGUMENT
naming the field at fault, and a response that cannot be sent is an error
raised in the handler, logged and answered like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.domain.errors import GatewayError, Reason

Parse = Callable[[bytes], Any]
Serialize = Callable[[Any], bytes]

# Nested messages deeper than this are not searched for the field at fault.
_MAX_DEPTH = 32


class ResponseTooLarge(Exception):
    """A response over the gateway's message size limit: a gateway bug, since
    every response is bounded (pages in bytes, metadata, content types)."""


class Codec:
    """A method's request parser and response serialiser (either None: the
    bytes pass as they are) and the size limit on its responses."""

    __slots__ = ("_max_bytes", "_message_type", "_parse", "_serialize")

    def __init__(
        self, parse: Parse | None, serialize: Serialize | None, max_bytes: int | None
    ) -> None:
        self._parse = parse
        self._serialize = serialize
        self._max_bytes = max_bytes
        owner = getattr(parse, "__self__", None)
        descriptor = getattr(owner, "DESCRIPTOR", None)
        self._message_type = descriptor if isinstance(descriptor, Descriptor) else None

    def parse(self, raw: bytes) -> Any:
        """raw parsed; INVALID_ARGUMENT when it is not a valid message."""
        if self._parse is None:
            return raw
        try:
            return self._parse(raw)
        except Exception as error:  # whatever the parser raises, the bytes are at fault
            failure = error
        message_type = self._message_type
        name = message_type.name if message_type is not None else "request"
        field = _non_utf8_field(message_type, raw, "", 0) if message_type is not None else None
        if field is not None:
            raise GatewayError(
                Reason.INVALID_ARGUMENT,
                f"{name}.{field} is not valid UTF-8; string fields must be UTF-8 text",
                field=field,
            )
        raise GatewayError(
            Reason.INVALID_ARGUMENT,
            f"the request is not a valid {name} message (malformed protobuf: {failure})",
        )

    def serialize(self, response: Any) -> bytes:
        encoded: bytes = response if self._serialize is None else self._serialize(response)
        max_bytes = self._max_bytes
        if max_bytes is not None and len(encoded) > max_bytes:
            raise ResponseTooLarge(
                f"response of {len(encoded)} bytes exceeds the message size limit of {max_bytes}"
            )
        return encoded


def unary_request(
    behavior: Callable[[Any, Any], Awaitable[Any]], codec: Codec
) -> Callable[[bytes, Any], Awaitable[bytes]]:
    async def handler(raw: bytes, context: Any) -> bytes:
        response = await behavior(codec.parse(raw), context)
        return codec.serialize(response)

    return handler


def stream_request(
    behavior: Callable[[AsyncIterator[Any], Any], Awaitable[Any]], codec: Codec
) -> Callable[[AsyncIterator[bytes], Any], Awaitable[bytes]]:
    async def parsed(raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for raw in raws:
            # Neither the bytes nor the message may stay referenced from this
            # frame while it waits for the client's next message: an idle
            # stream would hold its last chunk (twice) for as long.
            message = [codec.parse(raw)]
            del raw
            yield message.pop()

    async def handler(raws: AsyncIterator[bytes], context: Any) -> bytes:
        response = await behavior(parsed(raws), context)
        return codec.serialize(response)

    return handler


def stream_response(
    behavior: Callable[[Any, Any], AsyncIterator[Any]], codec: Codec
) -> Callable[[bytes, Any], AsyncIterator[bytes]]:
    async def handler(raw: bytes, context: Any) -> AsyncIterator[bytes]:
        responses = behavior(codec.parse(raw), context)
        try:
            async for response in responses:
                yield codec.serialize(response)
        finally:
            await responses.aclose()  # type: ignore[attr-defined]

    return handler


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise ValueError("truncated varint")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _non_utf8_field(descriptor: Descriptor, raw: bytes, path: str, depth: int) -> str | None:
    """The dotted name of a string field in raw whose bytes are not UTF-8."""
    pos = 0
    try:
        while pos < len(raw):
            tag, pos = _varint(raw, pos)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == 0:
                _, pos = _varint(raw, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                length, pos = _varint(raw, pos)
                value, pos = raw[pos : pos + length], pos + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                name = path + field.name
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        return name
                elif field.message_type is not None and depth < _MAX_DEPTH:
                    found = _non_utf8_field(field.message_type, value, name + ".", depth + 1)
                    if found is not None:
                        return found
            else:
                return None
    except ValueError:
        return None
    return None

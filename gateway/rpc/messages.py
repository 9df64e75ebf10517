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


def parse_request(parse: Parse | None, raw: bytes, message_type: Descriptor | None) -> Any:
    """raw parsed with parse; INVALID_ARGUMENT when it is not a valid message."""
    if parse is None:
        return raw
    try:
        return parse(raw)
    except Exception as error:  # whatever the parser raises, the bytes are at fault
        failure = error
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


def serialize_response(serialize: Serialize | None, response: Any, max_bytes: int | None) -> bytes:
    encoded: bytes = response if serialize is None else serialize(response)
    if max_bytes is not None and len(encoded) > max_bytes:
        raise ResponseTooLarge(
            f"response of {len(encoded)} bytes exceeds the message size limit of {max_bytes}"
        )
    return encoded


def _message_type(parse: Parse | None) -> Descriptor | None:
    owner = getattr(parse, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return descriptor if isinstance(descriptor, Descriptor) else None


def unary_request(
    behavior: Callable[[Any, Any], Awaitable[Any]],
    parse: Parse | None,
    serialize: Serialize | None,
    max_bytes: int | None,
) -> Callable[[bytes, Any], Awaitable[bytes]]:
    message_type = _message_type(parse)

    async def handler(raw: bytes, context: Any) -> bytes:
        response = await behavior(parse_request(parse, raw, message_type), context)
        return serialize_response(serialize, response, max_bytes)

    return handler


def stream_request(
    behavior: Callable[[AsyncIterator[Any], Any], Awaitable[Any]],
    parse: Parse | None,
    serialize: Serialize | None,
    max_bytes: int | None,
) -> Callable[[AsyncIterator[bytes], Any], Awaitable[bytes]]:
    message_type = _message_type(parse)

    async def parsed(raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for raw in raws:
            # Neither the bytes nor the message may stay referenced from this
            # frame while it waits for the client's next message: an idle
            # stream would hold its last chunk (twice) for as long.
            message = [parse_request(parse, raw, message_type)]
            del raw
            yield message.pop()

    async def handler(raws: AsyncIterator[bytes], context: Any) -> bytes:
        response = await behavior(parsed(raws), context)
        return serialize_response(serialize, response, max_bytes)

    return handler


def stream_response(
    behavior: Callable[[Any, Any], AsyncIterator[Any]],
    parse: Parse | None,
    serialize: Serialize | None,
    max_bytes: int | None,
) -> Callable[[bytes, Any], AsyncIterator[bytes]]:
    message_type = _message_type(parse)

    async def handler(raw: bytes, context: Any) -> AsyncIterator[bytes]:
        responses = behavior(parse_request(parse, raw, message_type), context)
        try:
            async for response in responses:
                yield serialize_response(serialize, response, max_bytes)
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

"""What a client flow asks its transport to do: the sans-IO vocabulary.

A flow (see _flows.py) is a generator, as httpx's auth flows are: it yields
an effect, the transport performs it and sends the result back (or throws
the error in). The sync Client performs effects by blocking, AsyncClient by
awaiting; the flows, and so every decision about requests, retries,
verification and clean-up, are the same code for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from google.protobuf.message import Message

from storagegw._crc32c import Buffer
from storagegw._digests import ObjectDigest
from storagegw._parts import PartStream
from storagegw._readers import AsyncObjectReader, ObjectReader
from storagegw._resumable import SegmentStream
from storagegw._streams import PutStream
from storagegw._types import Progress
from storagegw.v1 import storage_pb2

__all__ = [
    "BestEffort",
    "Blocking",
    "Call",
    "Concurrently",
    "Effect",
    "Flow",
    "OpenRead",
    "OpenedRead",
    "PutSource",
    "ReadChunk",
    "ReadChunkInto",
    "SendPut",
    "Sleep",
    "SpecFor",
    "UploadStream",
]

_Result = TypeVar("_Result")

UploadStream: TypeAlias = PutStream | SegmentStream | PartStream
Reader: TypeAlias = ObjectReader | AsyncObjectReader
# A PutSpec from the content type and size the source turned out to have.
SpecFor: TypeAlias = Callable[[str | None, int | None], storage_pb2.PutSpec]


class Effect:
    """One piece of I/O a flow needs done."""

    __slots__ = ()


# The send type is Any: each effect has its own result type (said below).
Flow: TypeAlias = Generator[Effect, Any, _Result]


@dataclass(frozen=True, slots=True)
class Call(Effect):
    """A unary RPC of StorageService; the response message comes back."""

    method: str
    request: Message
    timeout: float | None


@dataclass(frozen=True, slots=True)
class BestEffort(Effect):
    """A courtesy call (AbortUpload after a failure): its own failure, or the
    task's cancellation, must not hide the error being raised. None comes back."""

    call: Call


@dataclass(frozen=True, slots=True)
class Sleep(Effect):
    """Wait before a retry."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Blocking(Effect):
    """File work that blocks (open, read, write, fsync); its result comes back.

    The async transport runs it in a worker thread so the loop stays free.
    """

    work: Callable[[], object]


@dataclass(frozen=True, slots=True)
class SendPut(Effect):
    """One Put stream: `stream`'s messages for `blocks`, whose next() blocks
    (file reads). The gateway's response, verified, comes back as ObjectInfo
    (a PartStream's as the upload's UploadStatus)."""

    stream: UploadStream
    blocks: Iterator[bytes]
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class PutSource(Effect):
    """A plain Put of the caller's source, opened the transport's way (the
    async client also takes async iterables and reads files in threads).
    `spec` gives the PutSpec once the source's type and size are known."""

    source: object
    content_type: str | None
    size: int | None
    spec: SpecFor
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class OpenRead(Effect):
    """Start a Get; an OpenedRead comes back, its first message received.

    With a `digest`, the reader counts each verified chunk in it and leaves
    the whole-object check to the flow (a download across Get streams).
    Without one, `sha256` (verify_sha256) makes the reader hash what it
    receives and compare the object's SHA-256 too; the CRC32C is always
    checked."""

    request: storage_pb2.GetRequest
    key: str
    digest: ObjectDigest | None = None
    sha256: bool = False


@dataclass(frozen=True, slots=True)
class OpenedRead:
    """A Get under way: its reader (info, close) and its verified chunks,
    iterated by the transport that made them."""

    reader: Reader
    chunks: Iterator[Buffer] | AsyncIterator[Buffer]


@dataclass(frozen=True, slots=True)
class ReadChunk(Effect):
    """The next verified chunk of an OpenedRead; None at the (verified) end."""

    chunks: Iterator[Buffer] | AsyncIterator[Buffer]


@dataclass(frozen=True, slots=True)
class ReadChunkInto(Effect):
    """The next verified chunk of `opened`, handed to `write` (blocking file
    work) at once: (the chunk's length, what write returned) comes back;
    None at the (verified) end. The async transport checks and writes each
    chunk in one worker-thread hop (ReadChunk and then Blocking would take
    two)."""

    opened: OpenedRead
    write: Callable[[Buffer], int]


@dataclass(frozen=True, slots=True)
class Concurrently(Effect):
    """Run `flows` at the same time (threads, or tasks); their results come
    back as a list, in order. When one fails, `stop` is called (the others
    then end soon: it cancels their Gets) and, once all have ended, the
    first failure is raised; `stop` is called too when the caller is
    interrupted (KeyboardInterrupt, cancellation) while they run."""

    flows: tuple[Flow[Any], ...]
    stop: Callable[[], None]

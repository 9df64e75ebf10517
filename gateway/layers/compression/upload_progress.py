"""What a resumable upload into a compressed bucket keeps with the driver's
upload: its handle (the driver's, with the level and frame size the upload
began with) and, as the opaque state at each of the driver's checkpoints,
its progress (UploadProgress).

The driver persists stored bytes in its own units (an S3 part, a GCS chunk)
while the gateway counts original bytes: a checkpoint of the driver falls
anywhere within a stored frame. The progress then says which frame: the
frames stored wholly before it, the original offset where it begins (what a
continuation resends from, and what QueryUpload tells), and how many of its
stored bytes are persisted already (with their CRC32C): the continuation
compresses that frame again and writes only the rest, once the bytes it
gives match those persisted. Frames are independent and zstd is
deterministic, so the same original bytes give the same frame."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass

from gateway.domain.errors import GatewayError, Reason

# Handles of uploads this layer compresses begin so; any other handle is a
# driver's own (an upload of a type not compressed, stored as it is).
HANDLE_PREFIX = "zs1:"
# How the frames are stored, once the upload's first frame decided it.
UNDECIDED = ""
COMPRESSED = "z"
STORED = "s"  # zstd frames of raw blocks: the first frame saved too little
_ENTRY = struct.Struct("<II")  # a frame's stored and original size


@dataclass(frozen=True, slots=True)
class UploadHandle:
    """This layer's handle of a compressed upload."""

    inner: str
    level: int
    frame_size: int

    def encoded(self) -> str:
        return HANDLE_PREFIX + json.dumps({"h": self.inner, "l": self.level, "f": self.frame_size})

    @classmethod
    def decoded(cls, text: str) -> UploadHandle | None:
        """The handle, or None for a driver's own handle."""
        if not text.startswith(HANDLE_PREFIX):
            return None
        try:
            doc = json.loads(text[len(HANDLE_PREFIX) :])
            return cls(str(doc["h"]), int(doc["l"]), int(doc["f"]))
        except (ValueError, KeyError, TypeError):
            raise GatewayError(Reason.UPLOAD_NOT_FOUND, "no such upload") from None


@dataclass(frozen=True, slots=True)
class UploadProgress:
    """A compressed upload as of one of the driver's checkpoints."""

    # The gateway's own state as of offset (its running checksums...).
    gateway_state: bytes
    mode: str
    # Each frame stored wholly before the one the checkpoint falls in:
    # (stored size, original size).
    frames: tuple[tuple[int, int], ...]
    # The CRC32C of those frames' stored bytes.
    stored_crc32c: int
    # The original offset where the frame the checkpoint falls in begins.
    offset: int
    # Its stored bytes persisted already, and their CRC32C.
    partial: int
    partial_crc32c: int

    @property
    def stored_offset(self) -> int:
        """Where the frame the checkpoint falls in is stored."""
        return sum(stored for stored, _ in self.frames)

    @classmethod
    def initial(cls, gateway_state: bytes) -> UploadProgress:
        return cls(gateway_state, UNDECIDED, (), 0, 0, 0, 0)

    def encode(self) -> bytes:
        table = b"".join(_ENTRY.pack(stored, size) for stored, size in self.frames)
        return json.dumps(
            {
                "g": base64.b64encode(self.gateway_state).decode(),
                "m": self.mode,
                "t": base64.b64encode(table).decode(),
                "c": self.stored_crc32c,
                "o": self.offset,
                "p": self.partial,
                "pc": self.partial_crc32c,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> UploadProgress:
        try:
            doc = json.loads(data)
            table = base64.b64decode(doc["t"], validate=True)
            frames = tuple(_ENTRY.iter_unpack(table))
            progress = cls(
                base64.b64decode(doc["g"], validate=True),
                str(doc["m"]),
                frames,
                int(doc["c"]),
                int(doc["o"]),
                int(doc["p"]),
                int(doc["pc"]),
            )
        except (ValueError, KeyError, TypeError, struct.error) as error:
            raise GatewayError(
                Reason.INTERNAL, f"the compressed upload's state is not readable: {error}"
            ) from None
        if progress.mode not in (UNDECIDED, COMPRESSED, STORED):
            raise GatewayError(Reason.INTERNAL, "the compressed upload's state is not readable")
        if sum(size for _, size in frames) != progress.offset:
            raise GatewayError(Reason.INTERNAL, "the compressed upload's frames do not add up")
        return progress

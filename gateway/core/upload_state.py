"""The gateway's record of a resumable upload, which the driver stores with
the upload's bytes at each of its checkpoints: the running whole-object
CRC32C and SHA-256 as of that size, and what the client promised about the
whole object. Whoever continues the upload (a replica, the gateway after a
restart) finishes the checksums from it without reading the bytes back.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from gateway.core.ingest import Expected
from gateway.core.resumable_hash import ResumableChecksums
from gateway.domain.errors import GatewayError, Reason

STATE_VERSION = 1

Snapshot = tuple[int, bytes]  # (size, the encoded state as of that size)


@dataclass(slots=True)
class UploadState:
    """The gateway's record of an upload as of sums.size bytes."""

    sums: ResumableChecksums
    expected: Expected
    # The declared content type, for the upload policy's sniff of the first
    # bytes by whichever stream sends them ("": not recorded).
    content_type: str = ""

    def encode(self) -> bytes:
        sha = self.expected.sha256
        doc = {
            "v": STATE_VERSION,
            "sums": self.sums.save(),
            "expected": {
                "size": self.expected.size,
                "crc32c": self.expected.crc32c,
                "sha256": None if sha is None else base64.b64encode(sha).decode("ascii"),
            },
        }
        if self.content_type:
            doc["type"] = self.content_type
        return json.dumps(doc, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> UploadState:
        try:
            doc = json.loads(data)
            if doc["v"] != STATE_VERSION:
                raise ValueError(f"state version {doc['v']!r}")
            promised = doc["expected"]
            sha = promised["sha256"]
            return cls(
                ResumableChecksums.load(doc["sums"]),
                Expected(
                    size=promised["size"],
                    crc32c=promised["crc32c"],
                    sha256=None if sha is None else base64.b64decode(sha),
                ),
                str(doc.get("type", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise GatewayError(
                Reason.INTERNAL, f"the upload's gateway state is not readable: {error}"
            ) from None

    def hash(self, unit: int, data: bytes, crc: int | None = None) -> list[Snapshot]:
        """Hash data (whose CRC32C is crc, when known), splitting it at
        multiples of unit (the driver's checkpoint size); the encoded state
        at each."""
        sums = self.sums
        snapshots: list[Snapshot] = []
        position = 0
        while position < len(data):
            take = min(unit - sums.size % unit, len(data) - position)
            if take == len(data):
                sums.update(data, crc)
            else:
                sums.update(data[position : position + take])
            position += take
            if sums.size % unit == 0:
                snapshots.append((sums.size, self.encode()))
        return snapshots

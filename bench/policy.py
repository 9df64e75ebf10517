"""The upload-policy section: what a bucket's upload policy costs a small Put.

Two gateways on the local backend, up at once, their one bucket the same but
for its [buckets.NAME.upload_policy]: off (none) and on (type rules, so every
Put's first bytes are sniffed by libmagic: allowed image/*, executables,
scripts and HTML denied, the declared type required to agree; sizes from
1 KiB to 1 MiB). The cell is the
authentication section's (bench.auth) 4 KiB Put at the small-object
concurrencies, the variants interleaved in rounds, each measured against off
(target 0.95x ops/s), with gateway and client CPU per op. The payload is a
real 4 KiB PNG (what an image bucket takes), declared nothing, so the type
is the sniff's; libmagic names a PNG from its signature at once, on the
event loop. Bytes it does not recognise cost it a walk of its whole database
(a few hundred µs, in a worker thread): a third gateway, its policy the same
but for the allowed types, takes random bytes (the payload of the other
sections' cells), shown without a target.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from pathlib import Path

import google_crc32c

from bench import small
from bench.auth import AuthSection
from bench.auth_setup import Variant

SMALL_MIN_RATIO = 0.95
SEED = 16
POLICY = """
[buckets.bench.upload_policy]
min_size = "1KiB"
max_size = "1MiB"
allowed_types = ["image/*"]
denied_types = ["application/x-executable", "text/x-shellscript", "text/html"]
require_type_match = true
"""

# The same but for the allowed types, so that random bytes (which libmagic
# does not recognise) pass: what a sniff of them costs, shown without a target.
UNKNOWN_POLICY = """
[buckets.bench.upload_policy]
min_size = "1KiB"
max_size = "1MiB"
denied_types = ["application/x-executable", "text/x-shellscript", "text/html"]
require_type_match = true
"""


def png_of(size: int) -> bytes:
    """A PNG of exactly size bytes (at least 70): a real header and an IDAT
    chunk of deterministic random bytes filling the rest."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
    end = chunk(b"IEND", b"")
    filler = random.Random(SEED).randbytes(size - len(head) - len(end) - 12)
    return head + chunk(b"IDAT", filler) + end


class PolicySection(AuthSection):
    name = "policy"
    baseline = "off"
    small_min_ratio = SMALL_MIN_RATIO
    small_targets = frozenset({"on"})
    small_ops = ("put",)
    big_variants = ()
    big_targets = frozenset()
    title = "Upload policy: type rules with libmagic sniffing on against off (4 KiB Put)"

    def make_variants(self) -> list[Variant]:
        return [
            self._variant("off", "policy off", ""),
            self._variant("on", "policy on", POLICY),
            self._variant("unknown", "on, unknown bytes", UNKNOWN_POLICY),
        ]

    def _variant(self, name: str, label: str, policy: str) -> Variant:
        path: Path = self.data_dir / f"policy-{name}.toml"
        path.write_text(f'[buckets.bench]\nbackend = "local"\n{policy}')
        return Variant(name, label, {"GATEWAY_CONFIG": str(path)})

    def small_payload(self, variant: str) -> small.Payload:
        if variant == "unknown":
            return super().small_payload(variant)
        data = png_of(self.args.small_size)
        return small.Payload(data, int(google_crc32c.value(data)), hashlib.sha256(data).digest())

    def setup_note(self) -> str:
        return (
            "policy: two gateways (local backend), both up at once, each cell run on both in "
            "turn; on: the bucket's upload policy with type rules (every Put's first bytes "
            "sniffed by libmagic), sizes, on a real PNG payload declared nothing; off: the same "
            "bucket without a policy; on, unknown bytes: the policy without allowed types, on "
            "random bytes (libmagic walks its whole database, in a worker thread)"
        )

"""Real file headers, made here, for the upload policy's sniffing tests: each
sample is the start of a real file of its kind (a PNG that decodes, a ZIP
that zipfile opens, an ELF header the kernel would load), with the type it
truly is, a false type to declare, and its usual key suffix."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    # What libmagic names it; what a client declares for it truthfully.
    sniffed: str
    declared: str
    # A false declaration, which a require_type_match bucket refuses.
    false: str
    suffix: str

    def padded(self, size: int) -> bytes:
        """The sample made size bytes long, the way a larger file of its kind
        goes on: a text repeated, random bytes after a binary header."""
        if self.sniffed.startswith("text/"):
            return (self.data * (size // len(self.data) + 1))[:size]
        return self.data + os.urandom(max(0, size - len(self.data)))


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + os.urandom(48) for _ in range(16))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    quantisation = b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65))
    return (
        b"\xff\xd8\xff\xe0" + struct.pack(">H", 2 + len(app0)) + app0 + quantisation + b"\xff\xd9"
    )


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "a note " * 100)
    return buffer.getvalue()


def elf() -> bytes:
    """A 64-bit x86-64 executable's ELF header and one program header."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 200, 200, 0x1000)
    head = ident + header + program
    return head + bytes(200 - len(head))


SHELL = b"#!/bin/sh\nset -e\necho hello\nrm -rf /tmp/scratch\n"
HTML = (
    b"<!DOCTYPE html>\n<html><head><title>hi</title></head>"
    b"<body><script>alert(1)</script></body></html>\n"
)
TEXT = b"Dear reader,\nthis is a plain note of a few words.\n" * 8

CORPUS = (
    Sample("png", png(), "image/png", "image/png", "application/pdf", ".png"),
    Sample("jpeg", jpeg(), "image/jpeg", "image/jpeg", "image/png", ".jpg"),
    Sample("pdf", pdf(), "application/pdf", "application/pdf", "image/jpeg", ".pdf"),
    Sample("zip", zip_archive(), "application/zip", "application/zip", "application/pdf", ".zip"),
    Sample(
        "elf",
        elf(),
        "application/x-executable",
        "application/x-executable",
        "image/png",
        ".bin",
    ),
    Sample("shell", SHELL, "text/x-shellscript", "text/x-shellscript", "text/plain", ".sh"),
    Sample("html", HTML, "text/html", "text/html", "text/plain", ".html"),
    Sample("text", TEXT, "text/plain", "text/plain", "image/png", ".txt"),
)
BY_NAME = {sample.name: sample for sample in CORPUS}
# What the tests' buckets deny: executables and what a browser or shell runs.
DENIED = ("application/x-executable", "text/x-shellscript", "text/html")

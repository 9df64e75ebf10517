"""Whole-object checksums whose running state can be saved and restored.

A resumable upload may be continued by another process (a replica, or the
gateway restarted after a crash), which must finish the whole-object CRC32C
and SHA-256 without the bytes already persisted: S3 parts and GCS sessions
cannot be read back before the object is committed. A CRC32C's running value
is its whole state. hashlib cannot export a SHA-256's state, so this module
drives OpenSSL's SHA256_Init/SHA256_Update/SHA256_Final (the libcrypto that
Python's own hashlib uses) through ctypes on a SHA256_CTX, whose layout is
public and fixed in <openssl/sha.h> (unlike hashlib's opaque EVP contexts).
ctypes releases the GIL during the call, so hashing in a worker thread leaves
the event loop free, as with hashlib.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib

from gateway.domain.checksums import StreamChecksums


class _Sha256Ctx(ctypes.Structure):
    # typedef struct SHA256state_st { SHA_LONG h[8]; SHA_LONG Nl, Nh;
    #   SHA_LONG data[SHA_LBLOCK]; unsigned int num, md_len; } SHA256_CTX;
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


_STATE_BYTES = ctypes.sizeof(_Sha256Ctx)


def _load_libcrypto() -> ctypes.CDLL:
    names = ["libcrypto.so.3", "libcrypto.so"]
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "SHA256_Init"):
            ctx = ctypes.POINTER(_Sha256Ctx)
            lib.SHA256_Init.argtypes = [ctx]
            lib.SHA256_Update.argtypes = [ctx, ctypes.c_char_p, ctypes.c_size_t]
            lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctx]
            return lib
    raise RuntimeError("libcrypto (OpenSSL) with SHA256_Init is required for resumable uploads")


_lib = _load_libcrypto()


class ResumableSha256:
    """SHA-256 with save() and restore(); digests equal hashlib's."""

    __slots__ = ("_ctx",)

    def __init__(self, state: bytes | None = None) -> None:
        self._ctx = _Sha256Ctx()
        if state is None:
            _lib.SHA256_Init(ctypes.byref(self._ctx))
        else:
            if len(state) != _STATE_BYTES:
                raise ValueError(f"a SHA-256 state is {_STATE_BYTES} bytes, got {len(state)}")
            ctypes.memmove(ctypes.byref(self._ctx), state, _STATE_BYTES)
            if self._ctx.md_len != hashlib.sha256().digest_size or self._ctx.num >= 64:
                raise ValueError("not a SHA-256 state")

    def update(self, data: bytes) -> None:
        _lib.SHA256_Update(ctypes.byref(self._ctx), data, len(data))

    def save(self) -> bytes:
        return ctypes.string_at(ctypes.byref(self._ctx), _STATE_BYTES)

    def digest(self) -> bytes:
        """The digest so far; the running state is left as it was."""
        copy = _Sha256Ctx()
        ctypes.pointer(copy)[0] = self._ctx
        out = ctypes.create_string_buffer(32)
        _lib.SHA256_Final(out, ctypes.byref(copy))
        return out.raw


class ResumableChecksums(StreamChecksums):
    """StreamChecksums whose SHA-256 can be saved into a small JSON document
    (save()) and continued from one (load()). Without a SHA-256 (the
    bucket's choice, made when the upload starts) the document says so and
    the upload goes on without one, whoever continues it."""

    __slots__ = ("_saveable",)

    def __init__(
        self,
        size: int = 0,
        crc: int = 0,
        sha: ResumableSha256 | None = None,
        *,
        with_sha256: bool = True,
    ) -> None:
        self._saveable = sha or (ResumableSha256() if with_sha256 else None)
        super().__init__(size, crc, self._saveable, with_sha256=self._saveable is not None)

    def save(self) -> dict[str, object]:
        saveable = self._saveable
        return {
            "size": self.size,
            "crc32c": self.crc32c,
            "sha256_state": None
            if saveable is None
            else base64.b64encode(saveable.save()).decode("ascii"),
        }

    @classmethod
    def load(cls, doc: dict[str, object]) -> ResumableChecksums:
        size, crc, state = doc["size"], doc["crc32c"], doc["sha256_state"]
        if not isinstance(size, int) or not isinstance(crc, int):
            raise ValueError("malformed checksum state")
        if state is None:
            return cls(size, crc, with_sha256=False)
        if not isinstance(state, str):
            raise ValueError("malformed checksum state")
        return cls(size, crc, ResumableSha256(base64.b64decode(state)))

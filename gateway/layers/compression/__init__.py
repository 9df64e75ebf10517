"""Transparent compression of a bucket's objects (zstd, seekable format)."""

"""Content-addressed dedup of a bucket's objects (DedupBackend); see
blobs.py for the layout and why no interleaving loses an object."""

from gateway.layers.dedup.backend import DedupBackend as DedupBackend
from gateway.layers.dedup.sweep import bucket_stats as bucket_stats
from gateway.layers.dedup.sweep import collect_garbage as collect_garbage

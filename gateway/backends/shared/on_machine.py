"""What the drivers keeping objects on this machine (memory, local) share:
the write options only a remote store acts on, which they refuse, and the
capabilities they offer alike."""

from __future__ import annotations

from typing import Protocol

from gateway.backends.base import Capabilities, ObjectMover, UnfinishedCounter
from gateway.backends.shared.resumable import ResumableUploads, UploadStore
from gateway.domain.errors import unsupported
from gateway.domain.objects import WriteOptions

# Write options a remote store acts on, which no driver here can honour.
REMOTE_ONLY_OPTIONS = ("storage_class", "server_side_encryption", "kms_key_id")


def refuse_remote_options(options: WriteOptions, kind: str) -> None:
    """UNSUPPORTED, naming the option, when options set one of REMOTE_ONLY_OPTIONS."""
    for name in REMOTE_ONLY_OPTIONS:
        if getattr(options, name):
            raise unsupported(option=name, backend=kind)


class CountingUploadStore(UploadStore, UnfinishedCounter, Protocol):
    """An upload store that counts what its unfinished uploads hold."""


def on_machine_capabilities(store: CountingUploadStore, mover: ObjectMover) -> Capabilities:
    """A driver's on this machine: resumable uploads kept by the shared
    engine over its store, which counts them, the engine sweeping the stale
    ones; calls that stay local; and the driver's own cheap move."""
    uploads = ResumableUploads(store)
    return Capabilities(
        uploads=uploads,
        upload_counter=store,
        cleaner=uploads,
        calls_stay_local=True,
        mover=mover,
    )

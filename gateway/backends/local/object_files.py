"""The object files under root/objects: the file of a key, installing a
committed temp file as it, and removing it (with the directories it leaves
empty).

A key's '/' segments are directories: "a/b/c" is root/objects/a/b/c. So an
object cannot also be a prefix of other objects; such writes are KEY_CONFLICT.
All of this is blocking I/O, run in worker threads by the backend.
"""

from __future__ import annotations

import errno
import os

from gateway.backends.local.format import fsync_dir, make_dirs
from gateway.backends.observer import StoreObserver, timed_fsync
from gateway.domain.errors import (
    ErrorTemplate,
    GatewayError,
    Reason,
    key_conflict,
    precondition_failed,
)

_INSTALL_ATTEMPTS = 10


class ObjectFiles:
    """The files of objects under one objects directory."""

    def __init__(self, objects: str, observer: StoreObserver | None = None) -> None:
        self.objects = objects
        self._inside = os.path.join(objects, "")  # what a path under objects starts with
        self._observer = observer  # told of each directory fsync
        self.name_max = 255

    def read_name_max(self) -> None:
        """Learn the filesystem's longest file name (the directory must exist)."""
        try:
            self.name_max = os.pathconf(self.objects, "PC_NAME_MAX")
        except (OSError, ValueError):
            self.name_max = 255

    def path(self, key: str) -> str:
        """The file of key: root/objects joined with the key's segments."""
        segments = key.split("/")
        for segment in segments:
            if len(segment.encode()) > self.name_max:
                raise _name_too_long(key=key, name_max=self.name_max)
        path = os.sep.join([self.objects, *segments])
        # Keys arrive validated; this is defence in depth. A path normpath
        # would change ("..", ".", "//") could alias another key or escape.
        # objects is a real path, so once path is normal, being inside it is
        # a prefix test (os.path.commonpath costs more than the rest of a Put's
        # path work together).
        if os.path.normpath(path) != path or not path.startswith(self._inside):
            raise GatewayError(
                Reason.INVALID_KEY,
                f"key {key!r} does not map to a file inside the local backend's directory",
                key=key,
            )
        return path

    def install(self, key: str, tmp_path: str, path: str, create_only: str) -> None:
        """Make tmp_path the file of key, then fsync its directory (blocking).

        The key's directory is created first if need be, durably: see
        format.make_dirs.

        create_only names the condition that requires key not to exist, if
        any: then tmp_path is linked, which fails if key exists by now."""
        parent = os.path.dirname(path)
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                make_dirs(parent)
            except (FileExistsError, NotADirectoryError):
                conflict = self._file_above(key)
                if conflict is None:
                    # No file above: a directory another write made was removed
                    # by a delete that emptied it, between the two looks.
                    continue
                raise conflict from None
            except FileNotFoundError:
                # A delete removed a directory just created, as it was empty.
                continue
            except OSError as error:
                if error.errno == errno.ENAMETOOLONG:
                    raise _name_too_long(key=key, name_max=self.name_max) from None
                raise
            try:
                if create_only:
                    os.link(tmp_path, path)
                    os.unlink(tmp_path)
                else:
                    os.replace(tmp_path, path)
            except FileNotFoundError:
                # A delete removed the (empty) parent directory meanwhile.
                continue
            except NotADirectoryError:
                raise self._conflict_with_file(key) from None
            except (IsADirectoryError, FileExistsError):
                if os.path.isdir(path) and not os.path.islink(path):
                    if _remove_empty_dir(path):
                        continue  # an empty leftover directory: not a conflict
                    raise key_conflict(
                        key=key,
                        detail=f"{key!r} is a prefix of existing objects ({key + '/'!r}...), "
                        "so it cannot also be an object",
                    ) from None
                raise precondition_failed(
                    key=key, condition=create_only or "if_none_match"
                ) from None
            except OSError as error:
                if error.errno == errno.ENAMETOOLONG:
                    raise _name_too_long(key=key, name_max=self.name_max) from None
                raise
            self._fsync_dir(parent)
            return
        # Not the client's fault: the interceptor logs it and answers INTERNAL.
        raise RuntimeError(f"local backend: could not create {key!r}: its directory kept vanishing")

    def _fsync_dir(self, directory: str) -> None:
        if self._observer is None:
            fsync_dir(directory)
            return
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            timed_fsync(self._observer, fd, directory)
        finally:
            os.close(fd)

    def remove(self, path: str) -> bool:
        """Unlink the object file at path, then the directories that leaves
        empty; False when there was no file to unlink."""
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        parent = os.path.dirname(path)
        while parent != self.objects and _remove_empty_dir(parent):
            parent = os.path.dirname(parent)
        return True

    def _conflict_with_file(self, key: str) -> GatewayError:
        return self._file_above(key) or key_conflict(key=key, detail="a parent path is an object")

    def _file_above(self, key: str) -> GatewayError | None:
        """KEY_CONFLICT naming the object above key, if there is one."""
        segments = key.split("/")
        for depth in range(1, len(segments)):
            prefix = "/".join(segments[:depth])
            candidate = os.path.join(self.objects, *segments[:depth])
            if os.path.lexists(candidate) and not os.path.isdir(candidate):
                return key_conflict(
                    key=key,
                    detail=f"{prefix!r} is an object, so {key!r} cannot be created under it",
                )
        return None


_name_too_long = ErrorTemplate(
    Reason.INVALID_KEY,
    "key {key!r} has a path segment longer than {name_max} bytes, "
    "which the local backend's filesystem cannot store",
    metadata=("key",),
)


def _remove_empty_dir(path: str) -> bool:
    """rmdir path; False when it is not empty (or gone, or not a directory)."""
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True

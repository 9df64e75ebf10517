"""The gateway's errors as the OSErrors file-system code expects.

fsspec callers (and pandas, pyarrow, dask above them) catch FileNotFoundError,
FileExistsError, PermissionError: a missing object must be one of those, not a
StorageError. The StorageError stays attached as the cause.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from storagegw import errors

__all__ = ["as_os_error", "os_errors"]

# Most specific first: the first class the error is an instance of decides.
_ERRNOS: tuple[tuple[type[errors.StorageError], type[OSError], int], ...] = (
    (errors.NotFound, FileNotFoundError, errno.ENOENT),
    (errors.KeyConflict, FileExistsError, errno.EEXIST),
    (errors.PermissionDenied, PermissionError, errno.EACCES),
    (errors.Unauthenticated, PermissionError, errno.EACCES),
    (errors.InvalidArgument, OSError, errno.EINVAL),
    (errors.ObjectTooLarge, OSError, errno.EFBIG),
    (errors.QuotaExceeded, OSError, errno.EDQUOT),
    (errors.DeadlineExceeded, TimeoutError, errno.ETIMEDOUT),
    (errors.Unavailable, ConnectionError, errno.ECONNREFUSED),
    (errors.ResourceExhausted, OSError, errno.EBUSY),
)


def as_os_error(error: errors.StorageError, path: str, *, creating: bool = False) -> OSError:
    """The OSError for `error` on `path`. creating: the call was to create
    `path` only (if_none_match="*"), so a failed precondition means it exists."""
    if creating and isinstance(error, errors.PreconditionFailed):
        return FileExistsError(errno.EEXIST, f"{path} exists already", path)
    for storage_class, os_class, number in _ERRNOS:
        if isinstance(error, storage_class):
            return os_class(number, error.message, path)
    return OSError(errno.EIO, error.message, path)


@contextlib.contextmanager
def os_errors(path: str, *, creating: bool = False) -> Iterator[None]:
    """Raise a StorageError from the block as the matching OSError (see as_os_error)."""
    try:
        yield
    except errors.StorageError as error:
        raise as_os_error(error, path, creating=creating) from error

"""The gateway's errors as OSErrors (storagegw.fsspec._errors), class by class."""

from __future__ import annotations

import errno

import pytest

from storagegw import errors
from storagegw.fsspec._errors import as_os_error, os_errors


@pytest.mark.parametrize(
    ("error", "expected", "number"),
    [
        (errors.ObjectNotFound("no object"), FileNotFoundError, errno.ENOENT),
        (errors.BucketNotFound("no bucket"), FileNotFoundError, errno.ENOENT),
        (errors.KeyConflict("a file is in the way"), FileExistsError, errno.EEXIST),
        (errors.AccessDenied("not yours"), PermissionError, errno.EACCES),
        (errors.CredentialsMissing("who are you"), PermissionError, errno.EACCES),
        (errors.InvalidKey("bad key"), OSError, errno.EINVAL),
        (errors.ObjectTooLarge("too big"), OSError, errno.EFBIG),
        (errors.QuotaExceeded("full"), OSError, errno.EDQUOT),
        (errors.DeadlineExceeded("slow"), TimeoutError, errno.ETIMEDOUT),
        (errors.Unavailable("down"), ConnectionError, errno.ECONNREFUSED),
        (errors.TooManyStreams("busy"), OSError, errno.EBUSY),
        (errors.PreconditionFailed("changed"), OSError, errno.EIO),
        (errors.Internal("oops"), OSError, errno.EIO),
    ],
)
def test_each_error_is_the_os_error_file_code_expects(
    error: errors.StorageError, expected: type[OSError], number: int
):
    mapped = as_os_error(error, "bucket-path/key")
    assert type(mapped) is expected
    assert mapped.errno == number
    assert mapped.filename == "bucket-path/key"
    assert mapped.strerror == error.message


def test_a_failed_create_means_the_file_exists():
    mapped = as_os_error(errors.PreconditionFailed("if_none_match"), "k", creating=True)
    assert isinstance(mapped, FileExistsError)


def test_the_storage_error_stays_the_cause():
    cause = errors.ObjectNotFound("object 'k' not found")
    with pytest.raises(FileNotFoundError) as caught, os_errors("k"):
        raise cause
    assert caught.value.__cause__ is cause

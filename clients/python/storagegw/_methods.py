"""The methods both clients have, named once.

Client and AsyncClient derive from Methods: each operation named here
becomes each client's own method, as if named in its class body (its
__qualname__, __module__ and help() are the client's), blocking or a
coroutine after the client's `_run` (see _op.py).
"""

from __future__ import annotations

from typing import Any

from storagegw import _checks as checks
from storagegw import _lifecycle as lifecycle
from storagegw import _operations as operations
from storagegw import _stats as stats
from storagegw import _transfers as transfers
from storagegw._base import ClientBase
from storagegw._op import Operation

__all__ = ["Methods"]


class Methods(ClientBase):
    """ClientBase with the operations; see Client and AsyncClient."""

    # ------------------------------------------------------------ uploads

    put_bytes = operations.put_bytes
    put_file = transfers.put_file

    start_upload = operations.start_upload
    query_upload = operations.query_upload
    abort_upload = operations.abort_upload
    write_upload = operations.write_upload
    resume_upload = transfers.resume_upload

    # ------------------------------------------------------------ downloads

    open = transfers.open
    get_bytes = operations.get_bytes
    download_file = operations.download_file

    # ------------------------------------------------------------ metadata

    head = operations.head
    exists = operations.exists
    kind = operations.kind
    delete = operations.delete
    delete_many = operations.delete_many

    list_pages = operations.list_pages
    list = operations.list
    sign_url = operations.sign_url
    copy = operations.copy

    # ------------------------------------------------------------ upload checks

    finalize_upload = checks.finalize_upload
    scan_objects = checks.scan_objects

    # ------------------------------------------------------------ lifecycle

    get_lifecycle = lifecycle.get_lifecycle
    # ------------------------------------------------------------ buckets

    bucket_stats = stats.bucket_stats

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make each operation named in Methods a method of the client `cls`."""
        super().__init_subclass__(**kwargs)
        if Methods not in cls.__bases__:
            return  # a subclass of a client keeps the client's methods
        for name, attribute in vars(Methods).items():
            if isinstance(attribute, Operation):
                # In the client's own namespace, so help() lists it as the
                # client's; setattr does not call __set_name__ as a class body does.
                setattr(cls, name, attribute)
                attribute.__set_name__(cls, name)

"""The gateway as an svc-infra storage backend (`pip install storagegw[svc-infra]`).

    from storagegw.svc_infra import add_storage, easy_storage  # was: svc_infra.storage

    storage = add_storage(app)  # STORAGE_BACKEND=storagegw, STORAGEGW_TARGET=host:port

`GatewayStorageBackend` is svc-infra's `StorageBackend` protocol (put, get,
delete, exists, get_url, list_keys, get_metadata) on `storagegw.aio.AsyncClient`;
`easy_storage` and `add_storage` are svc-infra's, knowing it as "storagegw"
(see _selection for why svc-infra needs its import line changed, and _rules
for where the adapter follows svc-infra's rules rather than the gateway's).
Only this package imports svc-infra: `import storagegw` does not.
"""

from storagegw.svc_infra._backend import GatewayStorageBackend, KeyRules, metadata_of
from storagegw.svc_infra._rules import JSON_FIELDS
from storagegw.svc_infra._selection import (
    BACKEND_NAME,
    GatewayStorageSettings,
    add_storage,
    easy_storage,
)

__all__ = [
    "BACKEND_NAME",
    "JSON_FIELDS",
    "GatewayStorageBackend",
    "GatewayStorageSettings",
    "KeyRules",
    "add_storage",
    "easy_storage",
    "metadata_of",
]

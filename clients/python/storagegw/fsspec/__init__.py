"""fsspec support: the `storagegw://` file system (pip install storagegw[fsspec]).

    import fsspec
    fs = fsspec.filesystem("storagegw", target="127.0.0.1:50051", bucket="")
    with fs.open("reports/q1.csv", "wb") as f:
        f.write(b"region,total\\n")

pandas, pyarrow, dask and xarray open `storagegw://bucket/key` URLs through it.
"""

from storagegw.fsspec._async_file import AsyncGatewayFile
from storagegw.fsspec._file import GatewayFile
from storagegw.fsspec.filesystem import GatewayFileSystem

__all__ = ["AsyncGatewayFile", "GatewayFile", "GatewayFileSystem"]

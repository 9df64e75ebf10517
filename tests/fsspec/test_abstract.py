"""fsspec's own abstract test suite (fsspec.tests.abstract), on the gateway.

Every test of the installed fsspec's suite runs, none skipped: copy, get,
put, open and pipe. The fixtures say what an object store is: directories
exist only as prefixes of keys (supports_empty_directories False), as for s3fs
and gcsfs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

from storagegw.fsspec import GatewayFileSystem


class GatewayFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, gateway_fs: GatewayFileSystem) -> GatewayFileSystem:
        return gateway_fs

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture
    def fs_path(self, fs_root: str) -> str:
        return fs_root

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestGatewayCopy(AbstractCopyTests, GatewayFixtures):
    pass


class TestGatewayGet(AbstractGetTests, GatewayFixtures):
    pass


class TestGatewayPut(AbstractPutTests, GatewayFixtures):
    pass


class TestGatewayOpen(AbstractOpenTests, GatewayFixtures):
    pass


class TestGatewayPipe(AbstractPipeTests, GatewayFixtures):
    pass

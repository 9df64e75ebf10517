"""A gateway per module and driver, and a GatewayFileSystem on its default bucket."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from storagegw.fsspec import GatewayFileSystem
from tests.conftest import RunningGateway, run_gateway
from tests.drivers import backend_env

# The drivers the file system is shown on: local and memory in the gateway's
# process, and S3 on a real Ceph RADOS Gateway (skipped where Ceph is not
# installed; make test installs it).
FS_DRIVERS = ["local", "memory", "s3-ceph"]
_unique = itertools.count()


@pytest.fixture(scope="module", params=FS_DRIVERS)
def fs_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    env = backend_env(request, request.param)
    with run_gateway(env, tmp_path_factory.mktemp("fsspec")) as running:
        running.backend_name = request.param
        yield running


@pytest.fixture(scope="module")
def gateway_fs(fs_gateway: RunningGateway) -> Iterator[GatewayFileSystem]:
    # A small resumable threshold, so that resumable uploads happen at test sizes.
    fs = GatewayFileSystem(
        target=fs_gateway.target, resumable_threshold=1024 * 1024, skip_instance_cache=True
    )
    yield fs
    fs.close()


@pytest.fixture
def fs_root() -> str:
    """A directory of its own for each test (the gateway is the module's)."""
    return f"test-{next(_unique)}"

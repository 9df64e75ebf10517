"""The driver registry: each driver declares its settings in its spec, the
configuration reads them through it, and a new driver plugs in with one
entry (gateway/backends/registry.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.backends import registry
from gateway.backends.memory.backend import MemoryBackend
from gateway.backends.spec import DriverSpec
from gateway.config import load
from gateway.domain.settings import BucketTable, ConfigError
from tests.conftest import REPO, run_gateway
from tests.drivers import get, put


def test_kinds_in_the_order_of_the_choices_and_of_detection():
    assert registry.kinds() == ("local", "memory", "s3", "gcs")


def test_every_variable_names_a_field_of_its_driver():
    for spec in registry.SPECS:
        assert set(spec.env_names) <= set(spec.fields), spec.kind


def test_reading_the_settings_loads_no_driver():
    # A gateway loads only the drivers it uses, and only once it builds them.
    script = textwrap.dedent(
        """
        import sys
        from gateway.config import load
        load({"STORAGE_S3_BUCKET": "b"})
        load({"STORAGE_GCS_BUCKET": "b"})
        heavy = ("aioboto3", "botocore", "google.cloud", "gateway.backends.s3.backend",
                 "gateway.backends.gcs.backend")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@dataclass(frozen=True)
class TapeSettings:
    drive: str


def _read_tape(table: BucketTable) -> TapeSettings:
    if not table.text("drive"):
        raise ConfigError(table.name_of("drive"), "the tape drive is required")
    return TapeSettings(table.text("drive"))


TAPE = DriverSpec(
    kind="tape",
    fields=("drive",),
    env_names={"drive": "STORAGE_TAPE_DRIVE"},
    read=_read_tape,
    # Stands in for a real driver: objects kept in memory.
    build=lambda settings, observer: MemoryBackend(),
    detect=lambda env: "STORAGE_TAPE_DRIVE" in env,
)


@pytest.fixture
def with_tape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "SPECS", (*registry.SPECS, TAPE))


@pytest.mark.usefixtures("with_tape")
def test_a_new_driver_is_configured_from_its_spec_alone(tmp_path: Path):
    # From the environment: named, or detected from its variables.
    for env in ({"STORAGE_BACKEND": "tape", "STORAGE_TAPE_DRIVE": "st0"},
                {"STORAGE_TAPE_DRIVE": "st0"}):  # fmt: skip
        bucket = load(env).buckets["default"]
        assert (bucket.backend, bucket.settings) == ("tape", TapeSettings("st0"))
        # The configuration's view of a bucket: its driver's settings by kind and by field.
        assert (bucket.tape, bucket.drive, bucket.s3) == (bucket.settings, "st0", None)
    with pytest.raises(ConfigError) as error:
        load({"STORAGE_BACKEND": "tape"})
    assert str(error.value) == "STORAGE_TAPE_DRIVE: the tape drive is required"
    # From a bucket table, with the settings every bucket may have.
    path = tmp_path / "buckets.toml"
    path.write_text(
        "[buckets.archive]\nbackend = 'tape'\ndrive = 'st1'\nmax_unfinished_upload_bytes = '1KiB'\n"
    )
    bucket = load({"GATEWAY_CONFIG": str(path)}).buckets["archive"]
    assert (bucket.drive, bucket.max_unfinished_upload_bytes) == ("st1", 1024)
    path.write_text("[buckets.archive]\nbackend = 'tape'\ndrive = 'st1'\nquota = '1GiB'\n")
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert str(error.value) == "buckets.archive: unknown setting(s) quota"
    path.write_text("[buckets.archive]\nbackend = 'floppy'\n")
    with pytest.raises(ConfigError) as error:
        load({"GATEWAY_CONFIG": str(path)})
    assert str(error.value) == (
        "buckets.archive.backend: 'floppy' is not one of local, memory, s3, gcs, tape"
    )


@pytest.mark.usefixtures("with_tape")
def test_a_new_driver_serves_a_gateway(tmp_path: Path):
    with run_gateway({"STORAGE_TAPE_DRIVE": "st0"}, tmp_path) as running:
        backend = running.backend()
        assert backend.kind == "memory"  # what TAPE builds
        running.run(put(backend, "k", b"on tape"))
        assert running.run(get(backend, "k")) == b"on tape"


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"STORAGE_BACKEND": "memory", "STORAGE_MEMORY_QUOTA": "lots"}, "STORAGE_MEMORY_QUOTA"),
        ({"STORAGE_S3_BUCKET": "b", "GATEWAY_DEFAULT_BUCKET": "Bad!"}, "GATEWAY_DEFAULT_BUCKET"),
        ({"STORAGE_GCS_BUCKET": "b", "GATEWAY_DEFAULT_BUCKET": "Bad!"}, "GATEWAY_DEFAULT_BUCKET"),
    ],
)
def test_the_single_bucket_errors_name_the_variable_to_fix(env, setting):
    with pytest.raises(ConfigError) as error:
        load(env)
    assert error.value.setting == setting

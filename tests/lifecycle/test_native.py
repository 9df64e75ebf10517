"""Lifecycle rules installed in the store's own configuration: S3 (moto and
a real Ceph RGW, read back with boto3's GetBucketLifecycleConfiguration)
and GCS (fake-gcs-server, which takes the configuration and drops it: the
gateway's task then expires in its place)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_module
from gateway import lifecycle
from gateway.bucket_setup import build_buckets
from gateway.core.buckets import Buckets
from gateway.core.lifecycle_view import Where, get_lifecycle
from gateway.domain.lifecycle import DAY
from storagegw import cli
from tests.drivers import backend_env, list_all, put

S3_RULES = (
    '[[buckets.data.lifecycle]]\nid = "tmp"\nprefix = "tmp/"\nexpire_after = 7\n'
    "abort_incomplete_uploads_after = 2\n"
    '[[buckets.data.lifecycle]]\nid = "cold"\nprefix = "archive/"\ntransition_after = 30\n'
    'storage_class = "{storage_class}"\nexpire_after = 365\n'
)


def _gateway_side(tmp_path: Path, env: dict[str, str], rules: str) -> tuple[Buckets, Any]:
    """The buckets and plans `storagegw lifecycle apply` works with, for a
    bucket `data` on env's store under the key prefix gw/."""
    kind = env["STORAGE_BACKEND"]
    settings = {
        "s3": {
            "bucket": env.get("STORAGE_S3_BUCKET"),
            "endpoint": env.get("STORAGE_S3_ENDPOINT"),
            "access_key": env.get("STORAGE_S3_ACCESS_KEY"),
            "secret_key": env.get("STORAGE_S3_SECRET_KEY"),
            "region": "us-east-1",
            "addressing_style": "path",
        },
        "gcs": {
            "bucket": env.get("STORAGE_GCS_BUCKET"),
            "emulator_host": env.get("STORAGE_EMULATOR_HOST"),
        },
    }[kind]
    table = "".join(f'{name} = "{value}"\n' for name, value in settings.items())
    path = tmp_path / "buckets.toml"
    path.write_text(f'[buckets.data]\nbackend = "{kind}"\nprefix = "gw/"\n{table}{rules}')
    config = config_module.load({"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path)})
    buckets = build_buckets(config, (), None, None, None)
    return buckets, lifecycle.build_plans(config, buckets)


async def _apply_twice(buckets: Buckets, plans: Any) -> tuple[bool, bool]:
    first = (await lifecycle.apply(buckets, plans))["data"]
    second = (await lifecycle.apply(buckets, plans))["data"]
    return first, second


@pytest.mark.parametrize("store", ["s3-moto", "s3-ceph"])
def test_s3_rules_are_installed_under_the_driver_prefix(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    env = backend_env(request, store)
    client = request.getfixturevalue("moto_server" if store == "s3-moto" else "ceph_rgw").client()
    bucket = env["STORAGE_S3_BUCKET"]
    # An operator's rule of the same S3 bucket, which the gateway leaves alone.
    operator_rule = {
        "ID": "operator-logs",
        "Filter": {"Prefix": "elsewhere/"},
        "Status": "Enabled",
        "Expiration": {"Days": 90},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [operator_rule]}
    )
    # Ceph knows the storage classes of its placement targets only.
    storage_class = "GLACIER" if store == "s3-moto" else "STANDARD"
    buckets, plans = _gateway_side(tmp_path, env, S3_RULES.format(storage_class=storage_class))

    async def run() -> tuple[bool, bool, Any]:
        try:
            changed = await _apply_twice(buckets, plans)
            return (*changed, await get_lifecycle(buckets, plans, "data"))
        finally:
            await buckets.close()

    first, second, view = asyncio.run(run())
    assert (first, second) == (True, False)  # the second apply finds them in place
    rules = {
        rule["ID"]: rule
        for rule in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    }
    assert set(rules) == {"operator-logs", "storagegw:gw/:tmp", "storagegw:gw/:cold"}
    tmp, cold = rules["storagegw:gw/:tmp"], rules["storagegw:gw/:cold"]
    assert tmp["Filter"]["Prefix"] == "gw/tmp/"
    assert tmp["Expiration"]["Days"] == 7
    assert tmp["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2
    assert cold["Filter"]["Prefix"] == "gw/archive/"
    assert cold["Transitions"] == [{"Days": 30, "StorageClass": storage_class}]
    assert cold["Expiration"]["Days"] == 365
    shown = {r.rule.id: r.where for r in view.rules}
    assert shown == {"tmp": Where.NATIVE, "cold": Where.NATIVE, "default-abort": Where.GATEWAY}
    managed = {r.id for r in view.store_rules if r.managed}
    assert managed == {"storagegw:gw/:tmp", "storagegw:gw/:cold"}


def test_s3_rules_removed_from_the_configuration_leave_the_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = backend_env(request, "s3-moto")
    client = request.getfixturevalue("moto_server").client()
    buckets, plans = _gateway_side(tmp_path, env, S3_RULES.format(storage_class="GLACIER"))
    asyncio.run(_closing(buckets, lifecycle.apply(buckets, plans)))
    buckets, plans = _gateway_side(tmp_path, env, "lifecycle = []\n")
    assert asyncio.run(_closing(buckets, lifecycle.apply(buckets, plans))) == {"data": True}
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_lifecycle_configuration(Bucket=env["STORAGE_S3_BUCKET"])


async def _closing(buckets: Buckets, work: Any) -> Any:
    try:
        return await work
    finally:
        await buckets.close()


def test_gcs_emulator_drops_the_rules_and_the_gateway_expires_instead(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """fake-gcs-server answers the bucket's PATCH with success but keeps no
    lifecycle: the rules read back are none, so GetLifecycle says the
    gateway's task enforces them, and it does."""
    env = backend_env(request, "gcs")
    rules = '[[buckets.data.lifecycle]]\nid = "tmp"\nprefix = "tmp/"\nexpire_after = 7\n'
    buckets, plans = _gateway_side(tmp_path, env, rules)
    backend = dict(buckets)["data"]

    async def run() -> tuple[Any, Any, list[str]]:
        try:
            await lifecycle.apply(buckets, plans)
            view = await get_lifecycle(buckets, plans, "data")
            await put(backend, "tmp/a", b"old")
            await put(backend, "keep", b"kept")
            counts = await lifecycle.expire_once(buckets, plans, time.time() + 8 * DAY)
            keys, _ = await list_all(backend)
            return view, counts, keys
        finally:
            await buckets.close()

    view, counts, keys = asyncio.run(run())
    assert view.store_lifecycle
    assert view.store_rules == []
    shown = [(r.rule.id, r.where) for r in view.rules]
    assert shown == [("tmp", Where.FALLBACK), ("default-abort", Where.GATEWAY)]
    assert counts["data"].expired == 1
    assert keys == ["keep"]


def test_lifecycle_apply_installs_once(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`storagegw lifecycle apply`, from the gateway's own settings."""
    env = backend_env(request, "s3-moto")
    _gateway_side(tmp_path, env, S3_RULES.format(storage_class="GLACIER"))
    monkeypatch.setenv("GATEWAY_CONFIG", str(tmp_path / "buckets.toml"))
    monkeypatch.setenv("STORAGE_BASE_PATH", str(tmp_path))
    assert cli.main(["lifecycle", "apply"]) == 0
    assert cli.main(["lifecycle", "apply"]) == 0
    assert capsys.readouterr().out.splitlines() == ["data: installed", "data: already in place"]
    client = request.getfixturevalue("moto_server").client()
    rules = client.get_bucket_lifecycle_configuration(Bucket=env["STORAGE_S3_BUCKET"])["Rules"]
    assert sorted(rule["ID"] for rule in rules) == ["storagegw:gw/:cold", "storagegw:gw/:tmp"]


def test_gcs_rules_sent_carry_the_driver_prefix_and_the_gateways_mark(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """What the gateway asks of GCS (seen through a proxy, as the emulator
    keeps none of it): a Delete rule by age for the driver's prefix and the
    rule's, marked by a second prefix no object has, patched over the
    metageneration read."""
    from tests.gcs_proxy import RecordingProxy

    env = backend_env(request, "gcs")
    patches: list[tuple[dict[str, str], bytes]] = []

    def keep_patches(record: Any, body: bytes) -> bytes:
        if record.method == "PATCH":
            patches.append((record.query, body))
        return body

    with RecordingProxy(env["STORAGE_EMULATOR_HOST"]) as proxy:
        proxy.body_filter = keep_patches
        env["STORAGE_EMULATOR_HOST"] = proxy.endpoint
        rules = '[[buckets.data.lifecycle]]\nid = "tmp"\nprefix = "tmp/"\nexpire_after = 7\n'
        buckets, plans = _gateway_side(tmp_path, env, rules)
        assert asyncio.run(_closing(buckets, lifecycle.apply(buckets, plans))) == {"data": True}
    ((query, body),) = patches
    assert "ifMetagenerationMatch" in query
    assert json.loads(body)["lifecycle"] == {
        "rule": [
            {
                "action": {"type": "Delete"},
                "condition": {
                    "age": 7,
                    "matchesPrefix": ["gw/tmp/", "gw/.storagegw/lifecycle/tmp"],
                },
            }
        ]
    }

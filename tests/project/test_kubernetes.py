"""The Kubernetes manifests in deploy/kubernetes/: valid for the API schemas of
pinned Kubernetes versions (shipped inside the kubernetes-validate package: nothing
is downloaded), locked down, with probes, grace periods, ports and selectors that
agree with each other and with the settings the gateway loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from kubernetes_validate import utils as kubernetes

from gateway import config as config_module
from gateway import upkeep
from gateway.server import unreachable_url_base
from storagegw import cli as storagegw_cli
from tests.conftest import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes with gRPC probes generally available, and the newest whose
# schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27", "1.37")
POD = ("spec", "template", "spec")


def manifest_files() -> list[Path]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = [KUBERNETES / name for name in kustomization["resources"]]
    on_disk = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "kustomization.yaml lists every manifest, and only those"
    return listed


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate(resource: dict[str, Any], version: str) -> None:
    """Raises when the resource is not valid for that Kubernetes version, a kind the
    schemas do not know included (kubernetes-validate itself only warns of those)."""
    try:
        kubernetes.validate(resource, version, strict=True)
    except kubernetes.SchemaNotFoundError as error:
        raise AssertionError(error.message) from None


def kubernetes_resources() -> dict[str, dict[str, Any]]:
    """By kind, the Secret with the settings (not the policy) as "Secret"."""
    found: dict[str, dict[str, Any]] = {}
    for path in manifest_files():
        for doc in documents(path):
            key = doc["kind"]
            if key == "Secret" and "policy.toml" in doc["stringData"]:
                key = "PolicySecret"
            elif key == "Secret" and doc.get("type") == "kubernetes.io/tls":
                key = "TlsSecret"
            assert key not in found, f"two of {key}"
            found[key] = doc
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_manifests_are_valid_kubernetes(path: Path, version: str) -> None:
    resources = documents(path)
    assert resources
    for resource in resources:
        validate(resource, version)


@pytest.mark.parametrize(
    ("name", "where", "value"),
    [
        ("deployment.yaml", ["spec", "replica"], 2),  # a misspelt field
        ("deployment.yaml", ["spec", "replicas"], "two"),  # a wrong type
        ("deployment.yaml", [*POD, "containers", 0, "ports", 0, "containerPort"], "grpc"),
        ("deployment.yaml", [*POD, "containers", 0, "readinessProbe", "grpc", "prot"], 1),
        # The CronJob's own fields, and the pod spec inside its job template.
        ("cronjob-cleanup.yaml", ["spec", "concurrencyPolicyy"], "Forbid"),
        ("cronjob-cleanup.yaml", ["spec", "jobTemplate", *POD, "containers", 0, "command"], "x"),
    ],
)
def test_the_validator_refuses_a_broken_manifest(name: str, where: list[Any], value: Any) -> None:
    broken = documents(KUBERNETES / name)[0]
    node = broken
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    with pytest.raises(kubernetes.ValidationError):
        kubernetes.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_validator_refuses_an_unknown_kind() -> None:
    with pytest.raises(AssertionError, match="Couldn't find schema"):
        validate({"apiVersion": "apps/v1", "kind": "Deploymant", "metadata": {"name": "x"}}, "1.27")


def container() -> dict[str, Any]:
    pod = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    return dict(main)


def test_the_pod_is_locked_down() -> None:
    pod = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"] for mount in container()["volumeMounts"]}
    assert "/tmp" in mounts  # writable scratch under a read-only root
    assert "memory" in container()["resources"]["limits"]


def settings() -> dict[str, str]:
    resources = kubernetes_resources()
    return {**resources["ConfigMap"]["data"], **resources["Secret"]["stringData"]}


def test_termination_grace_covers_the_drain() -> None:
    pod = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    grace = int(settings()["GATEWAY_SHUTDOWN_GRACE"])
    pause = int(container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > grace + pause


def test_probes_ask_the_health_listener() -> None:
    grpc_port = int(settings()["GATEWAY_LISTEN"].rpartition(":")[2])
    health_port = int(settings()["GATEWAY_HEALTH_LISTEN"].rpartition(":")[2])
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports["grpc"] == grpc_port
    assert ports["health"] == health_port
    assert ports["http"] == int(settings()["GATEWAY_HTTP_LISTEN"].rpartition(":")[2])
    for probe in ("readinessProbe", "startupProbe"):
        # The kubelet's gRPC probes speak plaintext; the gRPC port serves TLS.
        assert container()[probe]["grpc"]["port"] == health_port
    assert container()["livenessProbe"]["tcpSocket"]["port"] == "grpc"


def test_prometheus_scrapes_the_metrics_listener() -> None:
    template = kubernetes_resources()["Deployment"]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    metrics_port = settings()["GATEWAY_METRICS_LISTEN"].rpartition(":")[2]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == metrics_port
    assert annotations["prometheus.io/path"] == "/metrics"
    metrics = {"name": "metrics", "containerPort": int(metrics_port), "protocol": "TCP"}
    assert metrics in container()["ports"]


def test_service_and_budget_select_the_pods() -> None:
    resources = kubernetes_resources()
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = resources["Service"]["spec"]
    assert service["clusterIP"] == "None"  # headless: clients balance per call
    for selector in (
        service["selector"],
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        resources["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    references = {
        source.get("configMapRef", source.get("secretRef", {}))["name"]
        for source in container()["envFrom"]
    }
    assert references == {
        resources["ConfigMap"]["metadata"]["name"],
        resources["Secret"]["metadata"]["name"],
    }


def test_the_pods_mount_the_tls_secret() -> None:
    mounts = {mount["name"]: mount["mountPath"] for mount in container()["volumeMounts"]}
    volumes = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]["volumes"]
    secret = next(v["secret"]["secretName"] for v in volumes if v["name"] == "tls")
    assert secret == kubernetes_resources()["TlsSecret"]["metadata"]["name"]
    for setting, key in (("GATEWAY_TLS_CERT", "tls.crt"), ("GATEWAY_TLS_KEY", "tls.key")):
        assert settings()[setting] == f"{mounts['tls']}/{key}"


def test_the_gateway_starts_with_the_manifests_settings(tmp_path: Path) -> None:
    # The ConfigMap and Secret as the pod sees them: the gateway loads them, with
    # authentication on (so it may listen on 0.0.0.0 without GATEWAY_ALLOW_INSECURE)
    # and signed URLs that name a reachable address.
    env = settings()
    policy = kubernetes_resources()["PolicySecret"]["stringData"]["policy.toml"]
    mounted = tmp_path / "policy.toml"
    mounted.write_text(policy)
    assert env["GATEWAY_POLICY"].endswith("/policy.toml")
    env["GATEWAY_POLICY"] = str(mounted)
    # The TLS Secret's placeholders replaced with a real pair, as a deployment would.
    leaf = trustme.CA().issue_cert("storagegw.example.com")
    for setting, blob in (
        ("GATEWAY_TLS_CERT", leaf.cert_chain_pems[0]),
        ("GATEWAY_TLS_KEY", leaf.private_key_pem),
    ):
        env[setting] = str(tmp_path / Path(env[setting]).name)
        blob.write_to_path(env[setting])
    config = config_module.load(env)
    assert config.access.authenticates
    assert config.transport.tls is not None
    assert config.transport.insecure_listens == ()
    assert unreachable_url_base(config) is None
    assert config.buckets[config.default_bucket].backend == "s3"
    assert config.shutdown_grace == int(env["GATEWAY_SHUTDOWN_GRACE"])
    # Upkeep is the CronJob's (test_the_cronjob_runs_every_upkeep_pass), not every
    # replica's each hour.
    assert config.cleanup_interval == 0
    assert config.dedup_sweep_interval == 0
    assert "GATEWAY_ALLOW_INSECURE" not in env
    for name, value in kubernetes_resources()["Secret"]["stringData"].items():
        assert "REPLACE-ME" in value, f"{name}: a placeholder, never a real secret"


# ------------------------------------------------------------ the upkeep CronJob


def cleanup_pod() -> dict[str, Any]:
    cronjob = kubernetes_resources()["CronJob"]
    return dict(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def test_the_cronjob_runs_in_the_gateways_pod_setup() -> None:
    # Same image, settings and files as the gateway: it sees the same buckets and
    # credentials, and its configuration loads as the gateway's does.
    (cleanup,) = cleanup_pod()["containers"]
    gateway = container()
    for field in ("image", "imagePullPolicy", "envFrom", "env", "securityContext"):
        assert cleanup.get(field) == gateway.get(field), field
    assert cleanup["volumeMounts"] == gateway["volumeMounts"]
    gateway_pod = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in cleanup_pod()["volumes"]}
    for mount in gateway["volumeMounts"]:
        (source,) = (v for v in gateway_pod["volumes"] if v["name"] == mount["name"])
        assert volumes[mount["name"]] == source, mount["name"]
    for field in ("securityContext", "automountServiceAccountToken", "enableServiceLinks"):
        assert cleanup_pod()[field] == gateway_pod[field], field
    assert set(cleanup["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in cleanup["resources"]["limits"]


def test_the_cronjob_runs_every_upkeep_pass(capsys: pytest.CaptureFixture[str]) -> None:
    (cleanup,) = cleanup_pod()["containers"]
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert entrypoint is not None
    # The image's entrypoint serves: only a command (not args) replaces it.
    assert json.loads(entrypoint[1]) == ["storagegw", "serve"]
    command = [*cleanup["command"], *cleanup.get("args", [])]
    assert command[:2] == ["storagegw", "cleanup"]
    # `storagegw` (the console script) hands these to the cleanup command's parser.
    with pytest.raises(SystemExit) as exit_help:
        storagegw_cli.main([*command[1:], "--help"])
    assert exit_help.value.code == 0
    parser = upkeep._parser()
    assert capsys.readouterr().out == parser.format_help()
    options = parser.parse_args(command[2:])
    assert upkeep._kinds(parser, options.only) == frozenset(upkeep.KINDS)
    assert options.dry_run is False  # the scheduled pass deletes


def test_the_cronjob_runs_one_pass_at_a_time() -> None:
    spec = kubernetes_resources()["CronJob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert cleanup_pod()["restartPolicy"] in ("Never", "OnFailure")
    # Every run ends (and so frees the Forbid) before the next hourly one is due.
    minute, hour, *_ = spec["schedule"].split()
    assert minute.isdigit()
    assert hour == "*"
    assert job["activeDeadlineSeconds"] < 3600
    assert spec["startingDeadlineSeconds"] < 3600
    assert job["backoffLimit"] >= 1
    assert job["ttlSecondsAfterFinished"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1


def test_the_cleanup_pods_are_not_served() -> None:
    # The Service and the budget select the gateway's pods, never the Job's.
    labels = cleanup_pod_labels()
    resources = kubernetes_resources()
    for selector in (
        resources["Service"]["spec"]["selector"],
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert not selector.items() <= labels.items()


def cleanup_pod_labels() -> dict[str, str]:
    template = kubernetes_resources()["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]
    return dict(template["metadata"]["labels"])

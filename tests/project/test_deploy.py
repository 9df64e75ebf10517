"""What ships for deployment holds up: the Dockerfile and its .dockerignore, the
Kubernetes manifests (validated against the API schemas of pinned Kubernetes
versions, shipped inside the kubernetes-validate package: no download), and the
sample Prometheus alert rules (`promtool`, from Debian's prometheus package, which
scripts/install-test-servers.sh installs).

No image is built here (this machine has no Docker): the tests read what the
Dockerfile says and check it against what the gateway needs."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes

from gateway import config as config_module
from gateway.server import unreachable_url_base
from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
KUBERNETES = REPO / "deploy" / "kubernetes"
ALERT_RULES = REPO / "deploy" / "prometheus" / "storagegw-alerts.yaml"
# The oldest Kubernetes with gRPC probes generally available, and the newest whose
# schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27", "1.37")


# ---------------------------------------------------------------- the Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


DOCKER = instructions(DOCKERFILE.read_text())


def arguments(keyword: str) -> list[str]:
    return [args for name, args in DOCKER if name == keyword]


def test_every_base_image_is_pinned_by_exact_tag_and_digest() -> None:
    bases = [args.split()[0] for args in arguments("FROM")]
    assert bases
    for base in bases:
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*@sha256:[0-9a-f]{64}", base), base


def test_the_gateway_runs_as_a_numeric_non_root_user() -> None:
    (user,) = arguments("USER")
    uid, _, gid = user.partition(":")
    # Numeric: Kubernetes' runAsNonRoot checks the image's user without a passwd file.
    assert uid.isdigit() and int(uid) != 0, user
    assert not gid or (gid.isdigit() and int(gid) != 0), user
    manifest = kubernetes_resources()["Deployment"]["spec"]["template"]["spec"]
    assert manifest["securityContext"]["runAsUser"] == int(uid)


def test_the_health_check_asks_the_configured_port() -> None:
    (healthcheck,) = arguments("HEALTHCHECK")
    command = healthcheck.partition("CMD")[2].strip()
    assert command.startswith("[")
    assert yaml.safe_load(command) == ["python", "-m", "gateway.healthcheck"]
    # No port of its own: the probe reads GATEWAY_LISTEN when it runs.
    assert not re.search(r"\b(50051|8080)\b", healthcheck)


def test_a_stop_signal_and_a_stop_timeout_that_cover_the_drain() -> None:
    assert arguments("STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(arguments("ENV"))
    grace = int(re.search(r"GATEWAY_SHUTDOWN_GRACE=(\d+)", env).group(1))  # type: ignore[union-attr]
    # A Dockerfile cannot set the stop timeout: the documented `docker run` does.
    text = DOCKERFILE.read_text()
    timeouts = [int(seconds) for seconds in re.findall(r"--stop-timeout (\d+)", text)]
    assert timeouts and all(timeout > grace for timeout in timeouts), (timeouts, grace)
    readme = (REPO / "README.md").read_text()
    assert f"--stop-timeout {timeouts[0]}" in readme


# ---------------------------------------------------------------- .dockerignore


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regex."""
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token == "**/":
            parts.append("(?:.*/)?")
        elif token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        elif token.startswith("["):
            parts.append(token)
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


def ignored(path: str, rules: str) -> bool:
    """Whether Docker leaves `path` out of the build context: the last pattern that
    matches it, or one of its parent directories, decides."""
    patterns = [
        line.strip() for line in rules.splitlines() if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    decision = False
    for line in patterns:
        negated = line.startswith("!")
        regex = _pattern(line.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            decision = not negated
    return decision


def test_the_ignore_matcher_follows_docker() -> None:
    rules = "*\n!keep/\n**/*.pyc\n"
    assert ignored("data/x", rules) and ignored(".venv", rules)
    assert not ignored("keep/a.py", rules)
    assert ignored("keep/sub/a.pyc", rules)


@pytest.mark.parametrize(
    "path",
    [
        "data/.url-secret", "data/default/objects/report.pdf", ".venv/bin/python",
        "node_modules/.bin/buf", ".git/config", ".pytest_cache/v/x", ".mypy_cache/3.11/x",
        ".ruff_cache/x", ".hypothesis/examples/x", "tests/conftest.py", "bench/results/latest.json",
        "storagegw.egg-info/PKG-INFO", "gateway/__pycache__/server.cpython-311.pyc",
        "gateway/tls/server.key", "gateway/server.pem", "clients/python/storagegw/.env",
        "build/lib/gateway/server.py", "deploy/kubernetes/secret.yaml",
    ],
)  # fmt: skip
def test_the_build_context_leaves_out(path: str) -> None:
    assert ignored(path, DOCKERIGNORE.read_text()), path


def test_the_build_context_holds_what_the_image_copies() -> None:
    rules = DOCKERIGNORE.read_text()
    sources = []
    for args in arguments("COPY"):
        if args.startswith("--from"):
            continue
        sources += shlex.split(args)[:-1]
    assert {"pyproject.toml", "README.md", "gateway", "clients/python/storagegw"} <= set(sources)
    for source in sources:
        files = [source] if (REPO / source).is_file() else [
            str(path.relative_to(REPO)) for path in (REPO / source).rglob("*.py")
        ]  # fmt: skip
        assert files, source
        for path in files:
            if "__pycache__" not in path:
                assert not ignored(path, rules), path


# ---------------------------------------------------------------- Kubernetes


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
    ("where", "value"),
    [
        (["spec", "replica"], 2),  # a misspelt field
        (["spec", "replicas"], "two"),  # a wrong type
        (["spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"], "grpc"),
        (["spec", "template", "spec", "containers", 0, "readinessProbe", "grpc", "prot"], 1),
    ],
)
def test_the_validator_refuses_a_broken_manifest(where: list[Any], value: Any) -> None:
    broken = documents(KUBERNETES / "deployment.yaml")[0]
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


def test_probes_ask_the_grpc_port() -> None:
    grpc_port = int(settings()["GATEWAY_LISTEN"].rpartition(":")[2])
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports["grpc"] == grpc_port
    assert ports["http"] == int(settings()["GATEWAY_HTTP_LISTEN"].rpartition(":")[2])
    for probe in ("readinessProbe", "startupProbe"):
        assert container()[probe]["grpc"]["port"] == grpc_port
    assert container()["livenessProbe"]["tcpSocket"]["port"] == "grpc"


def test_prometheus_scrapes_the_metrics_listener() -> None:
    template = kubernetes_resources()["Deployment"]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    metrics_port = settings()["GATEWAY_METRICS_LISTEN"].rpartition(":")[2]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == metrics_port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert {"name": "metrics", "containerPort": int(metrics_port), "protocol": "TCP"} in container()[
        "ports"
    ]


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
    config = config_module.load(env)
    assert config.access.authenticates
    assert config.transport.insecure_listens == ()
    assert unreachable_url_base(config) is None
    assert config.buckets[config.default_bucket].backend == "s3"
    assert config.shutdown_grace == int(env["GATEWAY_SHUTDOWN_GRACE"])
    assert "GATEWAY_ALLOW_INSECURE" not in env
    for name, value in kubernetes_resources()["Secret"]["stringData"].items():
        assert "REPLACE-ME" in value, f"{name}: a placeholder, never a real secret"


# ---------------------------------------------------------------- Prometheus rules

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing: scripts/install-test-servers.sh installs Debian's prometheus",
)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


@promtool
def test_the_alert_rules_pass_promtool(tmp_path: Path) -> None:
    checked = run_promtool("check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        ALERT_RULES.read_text().replace("increase(storage_egress_bytes_total[1d])", "increase(")
    )
    refused = run_promtool("check", "rules", str(broken))
    assert refused.returncode != 0


@promtool
def test_the_egress_alert_fires_over_its_daily_threshold(tmp_path: Path) -> None:
    # promtool's rule unit test: two replicas' counters for one backend, 300 GiB a
    # day each (over the 500 GiB sample threshold together), another backend at
    # 100 GiB; the alert names the first backend only.
    gib = 1024**3
    per_minute = 300 * gib // 1440
    tests = {
        "rule_files": [str(ALERT_RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'storage_egress_bytes_total{backend="s3",instance="a"}',
                 "values": f"0+{per_minute}x1500"},
                {"series": 'storage_egress_bytes_total{backend="s3",instance="b"}',
                 "values": f"0+{per_minute}x1500"},
                {"series": 'storage_egress_bytes_total{backend="gcs",instance="a"}',
                 "values": f"0+{100 * gib // 1440}x1500"},
            ],
            "alert_rule_test": [
                {"eval_time": "12h", "alertname": "StorageEgressPerDayHigh", "exp_alerts": []},
                {"eval_time": "25h", "alertname": "StorageEgressPerDayHigh", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "backend": "s3"},
                    "exp_annotations": {
                        "summary": "Egress from backend s3 over 500 GiB in a day",
                        "description": "s3 served 600GiB over the last 24 hours through "
                        "the gateway's replicas (storage_egress_bytes_total).",
                    },
                }]},
            ],
        }],
    }  # fmt: skip
    unit = tmp_path / "egress_test.yaml"
    unit.write_text(yaml.safe_dump(tests))
    passed = run_promtool("test", "rules", str(unit))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # The same test against a threshold it does not reach fails: the test can fail.
    quiet = tmp_path / "quiet-alerts.yaml"
    quiet.write_text(ALERT_RULES.read_text().replace("> 500 *", "> 5000 *"))
    tests["rule_files"] = [str(quiet)]
    unit.write_text(yaml.safe_dump(tests))
    failed = run_promtool("test", "rules", str(unit))
    assert failed.returncode != 0
